//! Data-driven attribution by a first-order Markov chain over channels or campaigns, with
//! removal effects solved exactly (absorbing-chain algebra) instead of simulated.
//!
//! States: (start), one per key, and the absorbing (conversion) and (null). Every journey
//! (its consecutive repeats collapsed) adds one transition from (start) to its first key, one
//! between each pair of neighbours, and one from its last key to (conversion) or (null). The
//! transition probabilities are the counts over each state's outgoing total.
//!
//! With `Q` the transient part and `N = (I - Q)^-1` its fundamental matrix, the probability of
//! converting from each state is `x = N r` (`r` the one-step conversion probabilities). Removing
//! a key k sends every transition into it to (null), so only the paths that never visit k still
//! convert; by the strong Markov property at the first visit of k,
//! `P(conversion without k) = x_start - h_k x_k` with `h_k = N[start][k] / N[k][k]` the
//! probability of ever reaching k. Hence the removal effect
//! `RE(k) = 1 - P_k / P = h_k x_k / x_start`, one matrix inverse for all keys. The value removal
//! effect is the same with `r_v(s) = r(s) x mean value of the conversions whose path ends in s`.
//!
//! The probabilities are solved in double precision (they are not money); conversions and
//! revenue are then split over the keys with [`largest_remainder`] in integers.
use super::attribution::{ONE_CONVERSION, largest_remainder};

/// A path of key indices (0-based) and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journey {
    pub keys: Vec<usize>,
    /// `Some(value in minor units)` for a conversion, `None` for a path that did not convert.
    pub conversion: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Markov {
    /// Per key: the removal effect on conversions and on value (0 for keys never visited).
    pub removal_effects: Vec<f64>,
    pub value_removal_effects: Vec<f64>,
    /// Per key: conversions credited, in millionths of a deal; they sum to the conversions.
    pub conversion_micros: Vec<i64>,
    /// Per key: revenue credited in minor units; it sums to the converting paths' value.
    pub revenue_minor: Vec<i64>,
    /// Probability that a journey from (start) converts.
    pub p_conversion: f64,
    pub conversions: i64,
    pub value_minor: i64,
}

/// Resolution at which removal effects become the integer weights of the money split.
const EFFECT_SCALE: f64 = 1e15;

/// The Markov attribution of `journeys` over `n_keys` keys. Empty journeys carry no
/// transition and are left out (a start-to-null path scales every key's reach alike and would
/// not change any removal effect). `None` when nothing converted.
pub fn attribute(n_keys: usize, journeys: &[Journey]) -> Option<Markov> {
    let m = n_keys + 1; // transient states: 0 = (start), 1 + k = key k
    let mut counts = vec![0f64; m * m];
    let mut conv = vec![0f64; m];
    let mut value = vec![0f64; m];
    let mut out = vec![0f64; m];
    let (mut conversions, mut value_minor) = (0i64, 0i64);
    for j in journeys {
        let mut prev = 0usize;
        for &k in &j.keys {
            let s = k + 1;
            if s == prev {
                continue; // consecutive repeats collapse
            }
            counts[prev * m + s] += 1.0;
            out[prev] += 1.0;
            prev = s;
        }
        if prev == 0 {
            continue;
        }
        out[prev] += 1.0;
        if let Some(v) = j.conversion {
            conv[prev] += 1.0;
            value[prev] += v as f64;
            conversions += 1;
            value_minor += v;
        }
    }
    if conversions == 0 {
        return None;
    }
    // A = I - Q, and the one-step conversion probability and value per state.
    let mut a = vec![0f64; m * m];
    let (mut r, mut rv) = (vec![0f64; m], vec![0f64; m]);
    for i in 0..m {
        a[i * m + i] = 1.0;
        if out[i] > 0.0 {
            for j in 0..m {
                a[i * m + j] -= counts[i * m + j] / out[i];
            }
            r[i] = conv[i] / out[i];
            rv[i] = value[i] / out[i];
        }
    }
    let n = invert(a, m);
    let x = mul(&n, &r, m);
    let xv = mul(&n, &rv, m);
    let mut removal_effects = vec![0f64; n_keys];
    let mut value_removal_effects = vec![0f64; n_keys];
    for k in 0..n_keys {
        let s = k + 1;
        let reach = n[s] / n[s * m + s]; // N[start][s] / N[s][s]
        removal_effects[k] = (reach * x[s] / x[0]).clamp(0.0, 1.0);
        value_removal_effects[k] = if xv[0] > 0.0 {
            (reach * xv[s] / xv[0]).clamp(0.0, 1.0)
        } else {
            0.0
        };
    }
    let weights = |e: &[f64]| e.iter().map(|v| (v * EFFECT_SCALE).round() as u128).collect::<Vec<_>>();
    let conversion_micros = largest_remainder(conversions * ONE_CONVERSION, &weights(&removal_effects)).unwrap_or_else(|| vec![0; n_keys]);
    let revenue_minor = largest_remainder(value_minor, &weights(&value_removal_effects)).unwrap_or_else(|| vec![0; n_keys]);
    Some(Markov {
        removal_effects,
        value_removal_effects,
        conversion_micros,
        revenue_minor,
        p_conversion: x[0],
        conversions,
        value_minor,
    })
}

/// Gauss-Jordan inverse of a row-major m x m matrix. `I - Q` of an absorbing chain is a
/// nonsingular, diagonally dominant M-matrix, so elimination without pivoting is stable.
fn invert(mut a: Vec<f64>, m: usize) -> Vec<f64> {
    for p in 0..m {
        let pivot = a[p * m + p];
        debug_assert!(pivot > 0.0, "I - Q has a positive diagonal");
        let inv = 1.0 / pivot;
        for j in 0..m {
            a[p * m + j] *= inv;
        }
        a[p * m + p] = inv;
        let (head, tail) = a.split_at_mut(p * m);
        let (row_p, tail) = tail.split_at_mut(m);
        for row in head.chunks_exact_mut(m).chain(tail.chunks_exact_mut(m)) {
            let f = row[p];
            if f == 0.0 {
                continue;
            }
            row[p] = 0.0;
            for (x, y) in row.iter_mut().zip(row_p.iter()) {
                *x -= f * y;
            }
        }
    }
    a
}

fn mul(a: &[f64], v: &[f64], m: usize) -> Vec<f64> {
    a.chunks_exact(m).map(|row| row.iter().zip(v).map(|(x, y)| x * y).sum()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn credits_are_non_negative_and_sum_exactly(
            raw in prop::collection::vec(
                (prop::collection::vec(0usize..6, 0..8), prop::option::of(0i64..10_000_000)),
                1..60,
            ),
        ) {
            let journeys: Vec<Journey> = raw.into_iter().map(|(keys, conversion)| Journey { keys, conversion }).collect();
            let converting: Vec<i64> = journeys.iter().filter(|j| !j.keys.is_empty()).filter_map(|j| j.conversion).collect();
            match attribute(6, &journeys) {
                None => prop_assert!(converting.is_empty()),
                Some(r) => {
                    prop_assert_eq!(r.conversions, converting.len() as i64);
                    prop_assert!(r.removal_effects.iter().all(|e| (0.0..=1.0).contains(e)));
                    prop_assert!(r.conversion_micros.iter().all(|c| *c >= 0));
                    prop_assert!(r.revenue_minor.iter().all(|c| *c >= 0));
                    prop_assert_eq!(r.conversion_micros.iter().sum::<i64>(), r.conversions * ONE_CONVERSION);
                    let value: i64 = converting.iter().sum();
                    if value > 0 {
                        prop_assert_eq!(r.revenue_minor.iter().sum::<i64>(), value);
                    }
                }
            }
        }
    }

    fn j(keys: &[usize], conversion: Option<i64>) -> Journey {
        Journey {
            keys: keys.to_vec(),
            conversion,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn published_three_channel_example() {
        // Bryl (analyzecore.com, 2016): c1 > c2 > c3 converts, c1 and c2 > c3 do not.
        // P(conversion) = 1/3; removal effects 0.5, 1, 1; conversions 0.2, 0.4, 0.4.
        let r = attribute(3, &[j(&[0, 1, 2], Some(100)), j(&[0], None), j(&[1, 2], None)]).unwrap();
        assert!(close(r.p_conversion, 1.0 / 3.0));
        assert!(close(r.removal_effects[0], 0.5));
        assert!(close(r.removal_effects[1], 1.0));
        assert!(close(r.removal_effects[2], 1.0));
        assert_eq!(r.conversion_micros, vec![200_000, 400_000, 400_000]);
        assert_eq!(r.revenue_minor, vec![20, 40, 40]);
    }

    #[test]
    fn value_removal_effects_weigh_what_a_path_brings() {
        // a > b converts 100, c converts 300, a does not. Conversions: every removal halves
        // P = 2/3, so 2 conversions split 1/3 each. Value: V = 2/3 x 50 + 1/3 x 300 = 133.33;
        // without a or b 100 (RE 0.25), without c 33.33 (RE 0.75): 400 as 80 / 80 / 240.
        let r = attribute(3, &[j(&[0, 1], Some(10_000)), j(&[2], Some(30_000)), j(&[0], None)]).unwrap();
        assert!(close(r.removal_effects[0], 0.5) && close(r.removal_effects[2], 0.5));
        assert!(close(r.value_removal_effects[0], 0.25));
        assert!(close(r.value_removal_effects[1], 0.25));
        assert!(close(r.value_removal_effects[2], 0.75));
        assert_eq!(r.conversion_micros, vec![666_667, 666_667, 666_666]);
        assert_eq!(r.revenue_minor, vec![8_000, 8_000, 24_000]);
        assert_eq!(r.conversions, 2);
        assert_eq!(r.value_minor, 40_000);
    }

    #[test]
    fn repeats_collapse_and_loops_are_solved_exactly() {
        // a > a > b converts; b > a does not. Collapsed: a > b (conv), b > a (null).
        // start: a 1/2, b 1/2; a: b 1/2, null 1/2; b: conv 1/2, a 1/2.
        // x_b = 1/2 + x_a/2, x_a = x_b/2 -> x_b = 2/3, x_a = 1/3; P = 1/2.
        // Without a: start -> b -> conv 1/2: P = 1/4, RE 1/2. Without b: 0, RE 1.
        let r = attribute(2, &[j(&[0, 0, 1], Some(500)), j(&[1, 0], None)]).unwrap();
        assert!(close(r.p_conversion, 0.5));
        assert!(close(r.removal_effects[0], 0.5));
        assert!(close(r.removal_effects[1], 1.0));
        assert_eq!(r.conversion_micros, vec![333_333, 666_667]);
        assert_eq!(r.revenue_minor.iter().sum::<i64>(), 500);
    }

    #[test]
    fn agrees_with_an_independent_exact_solver_and_the_simulation() {
        // Six aggregated paths over a, b, c, d with cycles and values (path, conversions,
        // nulls, value): a>b>a>c 3/2/450, b>c>d 2/5/120, a>a>d 1/3/80, c>b>c>a 4/1/200, d 0/4/0,
        // b>d>b 2/2/90. Expected: an exact solver written separately in Python (fractions of the
        // same absorbing chain); ChannelAttribution 2.2.5 with 10^8 simulations and
        // max_step 1000 gives a 0.60767 / b 0.60646 / c 0.55733 / d 0.34619 and conversions
        // 3.44347 / 3.43662 / 3.15820 / 1.96172.
        let paths: [(&[usize], usize, usize, i64); 6] = [
            (&[0, 1, 0, 2], 3, 2, 45_000),
            (&[1, 2, 3], 2, 5, 12_000),
            (&[0, 0, 3], 1, 3, 8_000),
            (&[2, 1, 2, 0], 4, 1, 20_000),
            (&[3], 0, 4, 0),
            (&[1, 3, 1], 2, 2, 9_000),
        ];
        let mut journeys = Vec::new();
        for (keys, conv, null, value) in paths {
            for _ in 0..conv {
                journeys.push(j(keys, Some(value / conv as i64)));
            }
            for _ in 0..null {
                journeys.push(j(keys, None));
            }
        }
        let r = attribute(4, &journeys).unwrap();
        let near = |a: f64, b: f64| (a - b).abs() < 1e-8;
        assert!(near(r.p_conversion, 12.0 / 29.0));
        for (got, want) in r.removal_effects.iter().zip([0.60763164, 0.6064907817, 0.5573108009, 0.3461954172]) {
            assert!(near(*got, want), "{got} vs {want}");
        }
        for (got, want) in r
            .value_removal_effects
            .iter()
            .zip([0.5417462503, 0.610598691, 0.6986649366, 0.3138891189])
        {
            assert!(near(*got, want), "{got} vs {want}");
        }
        // 12 conversions: exact 3.443275909, 3.436810989, 3.158122007, 1.961791094.
        assert_eq!(r.conversion_micros, vec![3_443_276, 3_436_811, 3_158_122, 1_961_791]);
        // 940.00: exact 235.226436, 265.1221929, 303.3605916, 136.2907795.
        assert_eq!(r.revenue_minor, vec![23_523, 26_512, 30_336, 13_629]);
    }

    #[test]
    fn nothing_converted_is_none_and_unvisited_keys_get_nothing() {
        assert!(attribute(2, &[j(&[0], None)]).is_none());
        let r = attribute(3, &[j(&[1], Some(7)), j(&[], None)]).unwrap();
        assert_eq!(r.conversion_micros, vec![0, 1_000_000, 0]);
        assert_eq!(r.revenue_minor, vec![0, 7, 0]);
    }
}
