//! Persona matching: weighted criteria over lead and account attributes.
//!
//! A lead's match with a persona is the weight of the criteria it meets over the total weight, in
//! percent; it belongs to the persona when that reaches the persona's threshold.
use rust_decimal::Decimal;
use serde_json::Value;

/// The value of one attribute of a lead (or its account).
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    Text(String),
    Number(Decimal),
}

/// One criterion: `values` is a JSON array (RANGE: `[min, max]`, either may be null).
#[derive(Debug, Clone)]
pub struct Criterion<'a> {
    pub attribute: &'a str,
    pub operator: &'a str,
    pub values: &'a Value,
    pub weight: i32,
}

/// Whether an attribute value meets a criterion. Text compares case-insensitively.
pub fn meets(c: &Criterion<'_>, value: Option<&Attr>) -> bool {
    let list = c.values.as_array().map(Vec::as_slice).unwrap_or_default();
    let Some(value) = value else { return false };
    match c.operator {
        "EXISTS" => match value {
            Attr::Text(t) => !t.trim().is_empty(),
            Attr::Number(_) => true,
        },
        "EQUALS" | "IN" => list.iter().any(|v| equals(value, v)),
        "CONTAINS" => match value {
            Attr::Text(t) => {
                let t = t.to_lowercase();
                list.iter().filter_map(Value::as_str).any(|v| t.contains(&v.to_lowercase()))
            }
            Attr::Number(_) => false,
        },
        "RANGE" => {
            let n = match value {
                Attr::Number(n) => *n,
                Attr::Text(t) => match t.trim().parse::<Decimal>() {
                    Ok(n) => n,
                    Err(_) => return false,
                },
            };
            let bound = |i: usize| list.get(i).and_then(number);
            bound(0).is_none_or(|lo| n >= lo) && bound(1).is_none_or(|hi| n <= hi)
        }
        _ => false,
    }
}

fn number(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => n.to_string().parse().ok(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn equals(value: &Attr, v: &Value) -> bool {
    match (value, v) {
        (Attr::Text(t), Value::String(s)) => t.trim().to_lowercase() == s.trim().to_lowercase(),
        (Attr::Number(n), v) => number(v) == Some(*n),
        (Attr::Text(t), v) => number(v).is_some_and(|n| t.trim().parse::<Decimal>().ok() == Some(n)),
    }
}

/// How a lead matches a persona: the weights (kept as integers, so that a third stays a third)
/// and which criteria were met, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub matched_weight: i32,
    pub total_weight: i32,
    pub met: Vec<bool>,
}

impl Match {
    /// matched / total x 100, exact (0 without weights).
    pub fn percent(&self) -> Decimal {
        percent(self.matched_weight, self.total_weight)
    }

    /// Whether the match reaches `threshold` percent, decided in integers.
    pub fn reaches(&self, threshold: i32) -> bool {
        self.total_weight > 0 && i64::from(self.matched_weight) * 100 >= i64::from(threshold) * i64::from(self.total_weight)
    }
}

/// matched / total x 100, exact (0 when total is 0).
pub fn percent(matched: i32, total: i32) -> Decimal {
    if total <= 0 {
        return Decimal::ZERO;
    }
    Decimal::from(i64::from(matched) * 100) / Decimal::from(total)
}

/// The match of a lead (its attributes through `attr`) with a persona's criteria.
pub fn evaluate(criteria: &[Criterion<'_>], attr: impl Fn(&str) -> Option<Attr>) -> Match {
    let met: Vec<bool> = criteria.iter().map(|c| meets(c, attr(c.attribute).as_ref())).collect();
    let weight = |c: &Criterion<'_>| c.weight.max(0);
    Match {
        matched_weight: criteria.iter().zip(&met).filter(|(_, m)| **m).map(|(c, _)| weight(c)).sum(),
        total_weight: criteria.iter().map(weight).sum(),
        met,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(s: &str) -> Option<Attr> {
        Some(Attr::Text(s.into()))
    }

    #[test]
    fn weighted_match_by_hand() {
        // Peter Produzent: 40 title + 30 industry + 20 size + 10 country = 100.
        let title = json!(["Produktion", "Production"]);
        let industry = json!(["Machine building"]);
        let size = json!([50, 500]);
        let country = json!(["DE", "FR"]);
        let criteria = [
            Criterion {
                attribute: "jobTitle",
                operator: "CONTAINS",
                values: &title,
                weight: 40,
            },
            Criterion {
                attribute: "industry",
                operator: "EQUALS",
                values: &industry,
                weight: 30,
            },
            Criterion {
                attribute: "employeeCount",
                operator: "RANGE",
                values: &size,
                weight: 20,
            },
            Criterion {
                attribute: "country",
                operator: "IN",
                values: &country,
                weight: 10,
            },
        ];
        let lead = |a: &str| match a {
            "jobTitle" => text("Leiter PRODUKTION"),
            "industry" => text("machine building"),
            "employeeCount" => Some(Attr::Number(Decimal::from(800))),
            "country" => text("DE"),
            _ => None,
        };
        let m = evaluate(&criteria, lead);
        let (pct, met) = (m.percent(), m.met.clone());
        // 40 + 30 + 10 of 100; the size is out of range.
        assert_eq!(pct, Decimal::from(80));
        assert_eq!(met, vec![true, true, false, true]);
        let pct = evaluate(&criteria[1..3], |_| None).percent();
        assert_eq!(pct, Decimal::ZERO);
    }

    #[test]
    fn operators() {
        let v = json!([10, null]);
        let c = Criterion {
            attribute: "x",
            operator: "RANGE",
            values: &v,
            weight: 1,
        };
        assert!(meets(&c, Some(&Attr::Number(Decimal::from(10)))));
        assert!(!meets(&c, Some(&Attr::Number(Decimal::from(9)))));
        let e = json!([]);
        let c = Criterion {
            attribute: "x",
            operator: "EXISTS",
            values: &e,
            weight: 1,
        };
        assert!(meets(&c, text("a").as_ref()) && !meets(&c, text(" ").as_ref()) && !meets(&c, None));
        // A third of the weight: exact, not 33.33.
        let one = json!(["a"]);
        let criteria = [
            Criterion {
                attribute: "a",
                operator: "EQUALS",
                values: &one,
                weight: 1,
            },
            Criterion {
                attribute: "b",
                operator: "EQUALS",
                values: &one,
                weight: 2,
            },
        ];
        let m = evaluate(&criteria, |k| (k == "a").then(|| Attr::Text("A".into())));
        let pct = m.percent();
        assert!(!m.reaches(34) && m.reaches(33));
        assert_eq!(pct * Decimal::from(3), Decimal::from(100));
    }
}
