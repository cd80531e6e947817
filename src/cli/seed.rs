//! Deterministic synthetic data at any scale: `closedloop seed --leads N [--seed S]`.
//!
//! The rows are generated in memory as an import [`Dataset`] and written by the import's code, so
//! they pass the same checks and keep the same invariants (campaign touchpoint counters, stage
//! history, buying centers). The same `--leads` and `--seed` give the same data; seeding the same
//! workspace twice changes nothing the second time.
use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::import::{self, AccountRow, CampaignRow, ContactRow, CostRow, Dataset, LeadRow, OpportunityRow, TouchpointRow, UserRow};
use crate::BoxError;
use crate::cli::progress::Progress;
use crate::db::Db;
use crate::domain::vocab::{CampaignKind, CampaignStatus, CostCategory, LifecycleStatus, OpportunityStatus};
use crate::service::Patch;

/// `closedloop seed`: fills `workspace` (created if missing) with about `leads` leads.
pub async fn run(db: &Db, workspace: &str, leads: usize, seed: u64, progress: &Progress) -> Result<String, BoxError> {
    progress.start("generating leads", Some(leads as u64));
    let data = tokio::task::spawn_blocking(move || generate(leads, seed)).await?;
    progress.done(data.leads.len() as u64);
    let counts = import::apply(db, workspace, data, progress).await?;
    Ok(format!("seeded workspace {:?} (seed {seed}): {counts}", workspace.trim()))
}

/// SplitMix64: small, fast and good enough for test data; the same seed gives the same stream.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..hi` (`hi` > `lo`).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo) as u64) as i64
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// An index drawn with the given weights.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
        let mut x = self.below(total);
        for (i, w) in weights.iter().enumerate() {
            if x < u64::from(*w) {
                return i;
            }
            x -= u64::from(*w);
        }
        weights.len() - 1
    }
}

/// The data set's "now": generated time ends here, so the same seed always gives the same data.
pub fn end() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(2026, 1, 1)
        .expect("valid date")
        .and_hms_opt(0, 0, 0)
        .expect("valid time")
        .and_utc()
}

const DAY: i64 = 86_400;

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).expect("in range")
}

/// A company size band for an employee count, as leads carry it.
pub fn size_band(employees: i64) -> &'static str {
    match employees {
        ..50 => "1-49",
        50..200 => "50-199",
        200..500 => "200-499",
        500..1000 => "500-999",
        1000..5000 => "1000-4999",
        _ => "5000+",
    }
}

/// Stage path of a lead: (stage key, entered at) from `created`, through the stages up to `stage`,
/// `step` seconds apart or spread evenly until `until`, never after `cap`.
pub fn stage_path(
    stage: &str,
    created: i64,
    until: Option<(i64, Option<i64>)>,
    step: &mut impl FnMut() -> i64,
    cap: i64,
) -> Vec<(String, DateTime<Utc>)> {
    let keys: &[&str] = match stage {
        "LEAD" => &["LEAD"],
        "MQL" => &["LEAD", "MQL"],
        "SQL" => &["LEAD", "MQL", "SQL"],
        "NURTURE" => &["LEAD", "MQL", "NURTURE"],
        "DISQUALIFIED" => &["LEAD", "DISQUALIFIED"],
        "OPPORTUNITY" => &["LEAD", "MQL", "SQL", "OPPORTUNITY"],
        _ => &["LEAD", "MQL", "SQL", "OPPORTUNITY", "CUSTOMER"],
    };
    let mut out = Vec::with_capacity(keys.len());
    let mut t = created;
    for (i, key) in keys.iter().enumerate() {
        let next = match (*key, until) {
            (_, _) if i == 0 => created,
            ("OPPORTUNITY", Some((opened, _))) => opened,
            ("CUSTOMER", Some((opened, won))) => won.unwrap_or(opened),
            // Before the deal: MQL and SQL at a third and two thirds of the way to it.
            ("MQL", Some((opened, _))) => created + (opened - created) / 3,
            ("SQL", Some((opened, _))) => created + (opened - created) * 2 / 3,
            _ => t + step(),
        };
        t = next.clamp(t, cap.max(t));
        out.push(((*key).to_owned(), at(t)));
    }
    out
}

const FIRST: &[&str] = &[
    "Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hannah", "Jan", "Julia", "Lukas", "Maria", "Max", "Nina", "Oliver", "Paul",
    "Sarah", "Tom", "Laura", "Jonas", "Sophie", "Leon", "Mia", "Noah", "Olivia", "Liam", "Chloe", "Lucas", "Ines", "Marco",
];
const LAST: &[&str] = &[
    "Mueller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Smith",
    "Johnson",
    "Brown",
    "Martin",
    "Bernard",
    "Dubois",
    "Jansen",
    "de Vries",
    "Rossi",
    "Garcia",
    "Nowak",
    "Berg",
    "Hansen",
    "Murphy",
    "Wilson",
    "Taylor",
    "Moreau",
    "Koch",
];
const NAME_A: &[&str] = &[
    "Nord", "Blue", "Alpen", "Silver", "Iron", "Bright", "Rhein", "Atlas", "Nova", "Pioneer", "Summit", "Delta", "Vertex", "Harbor",
    "Falcon", "Granite", "Cedar", "Orion", "Polar", "Quantum",
];
const NAME_B: &[&str] = &[
    "wind", "line", "stone", "field", "works", "point", "bridge", "gate", "path", "labs", "soft", "tec", "data", "logic", "flow", "core",
];
const NAME_C: &[&str] = &["GmbH", "AG", "Ltd", "Inc", "SAS", "BV", "AB", "SE", "LLC", "Group"];
const INDUSTRIES: &[&str] = &[
    "Software",
    "Manufacturing",
    "Machine building",
    "Financial services",
    "Healthcare",
    "Retail",
    "Logistics",
    "Energy",
    "Professional services",
    "Public sector",
];
const INDUSTRY_W: &[u32] = &[18, 14, 10, 11, 9, 8, 7, 6, 10, 4];
const COUNTRIES: &[&str] = &["DE", "US", "GB", "FR", "NL", "AT", "CH", "SE", "ES", "IT", "PL", "DK"];
const COUNTRY_W: &[u32] = &[22, 20, 12, 9, 6, 5, 5, 3, 4, 4, 3, 2];
/// (title, decision role)
const TITLES: &[(&str, &str)] = &[
    ("CEO", "Decision maker"),
    ("Managing Director", "Decision maker"),
    ("CFO", "Economic buyer"),
    ("Head of Procurement", "Economic buyer"),
    ("CTO", "Technical evaluator"),
    ("IT Director", "Technical evaluator"),
    ("Production Manager", "Influencer"),
    ("Operations Manager", "Influencer"),
    ("Marketing Manager", "Influencer"),
    ("Data Analyst", "User"),
    ("Engineer", "User"),
];
const TITLE_W: &[u32] = &[2, 3, 3, 4, 3, 5, 8, 8, 8, 6, 10];
const TEAMS: &[&str] = &["Sales DACH", "Sales West", "Sales South", "Sales North", "Inside Sales"];
/// (channel, touchpoint types, cost category, typical budget in euros)
const CHANNELS: &[(&str, &[&str], CostCategory, i64)] = &[
    ("EMAIL", &["EMAIL_SENT", "EMAIL_OPEN", "EMAIL_CLICK"], CostCategory::Software, 1_500),
    ("WEBINAR", &["WEBINAR_REGISTER", "WEBINAR_ATTEND"], CostCategory::Production, 4_000),
    ("PAID_SOCIAL", &["AD_CLICK", "FORM_SUBMIT"], CostCategory::Media, 6_000),
    ("PAID_SEARCH", &["AD_CLICK", "PAGE_VIEW"], CostCategory::Media, 8_000),
    ("DISPLAY", &["AD_CLICK", "PAGE_VIEW"], CostCategory::Media, 5_000),
    ("TRADE_FAIR", &["TRADE_FAIR_SCAN", "MEETING"], CostCategory::Tickets, 25_000),
    ("CONTENT", &["WHITEPAPER_DOWNLOAD", "PAGE_VIEW"], CostCategory::Content, 3_000),
    ("EVENT", &["EVENT_VISIT", "MEETING"], CostCategory::Production, 12_000),
];
const CHANNEL_W: &[u32] = &[22, 12, 16, 20, 6, 4, 14, 6];
const KINDS: &[CampaignKind] = &[
    CampaignKind::Acquisition,
    CampaignKind::Nurture,
    CampaignKind::CrossSell,
    CampaignKind::Upsell,
    CampaignKind::Loyalty,
    CampaignKind::Onboarding,
];
const KIND_W: &[u32] = &[70, 15, 5, 5, 3, 2];
const PRODUCTS: &[&str] = &[
    "Platform licence",
    "Analytics add-on",
    "Implementation",
    "Support plan",
    "Expansion",
    "Renewal",
];
const OTHER_ROLES: &[&str] = &["Economic buyer", "Technical evaluator", "Influencer", "User"];

/// The whole data set for `n` leads, from `seed`.
pub fn generate(n: usize, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed);
    let end = end().timestamp();
    let start = end - 3 * 365 * DAY;
    let n = n.max(1);
    let n_users = (n / 5_000).max(5);
    let n_accounts = (n / 10).max(1);
    let n_campaigns = (n / 200).max(20);
    let n_opps = (n / 20).max(1);
    let mut d = Dataset::default();

    for i in 1..=n_users {
        let (first, last) = (rng.pick(FIRST), rng.pick(LAST));
        d.users.push(UserRow {
            line: i as u64 + 1,
            id: format!("U{i}"),
            name: format!("{first} {last}"),
            email: Patch::Set(format!(
                "{}.{}{i}@seed.example",
                first.to_lowercase(),
                last.to_lowercase().replace(' ', "")
            )),
            team: Patch::Set(TEAMS[(i - 1) % TEAMS.len()].to_owned()),
            active: Some(true),
        });
    }

    struct Account {
        name: String,
        domain: String,
        industry: &'static str,
        employees: i64,
        country: &'static str,
    }
    let accounts: Vec<Account> = (1..=n_accounts)
        .map(|i| {
            let (a, b, c) = (rng.pick(NAME_A), rng.pick(NAME_B), rng.pick(NAME_C));
            // Log-uniform between 5 and 20,000 employees.
            let employees = (5.0_f64 * 4_000.0_f64.powf(rng.unit())).round() as i64;
            Account {
                name: format!("{a}{b} {c}"),
                domain: format!("{}{b}{i}.example", a.to_lowercase()),
                industry: INDUSTRIES[rng.weighted(INDUSTRY_W)],
                employees,
                country: COUNTRIES[rng.weighted(COUNTRY_W)],
            }
        })
        .collect();

    // Campaigns, in order of their start.
    let mut starts: Vec<i64> = (0..n_campaigns)
        .map(|_| rng.range(start - 120 * DAY, end - 30 * DAY) / DAY * DAY)
        .collect();
    starts.sort_unstable();
    starts[0] = (start - 120 * DAY) / DAY * DAY;
    let mut campaign_channel = Vec::with_capacity(n_campaigns);
    for (i, &s) in starts.iter().enumerate() {
        let i = i + 1;
        let ch = rng.weighted(CHANNEL_W);
        let (channel, _, category, typical) = CHANNELS[ch];
        campaign_channel.push(ch);
        let kind = KINDS[rng.weighted(KIND_W)];
        let first_day = at(s).date_naive();
        let last_day = first_day + Duration::days(rng.range(14, 120));
        let budget_eur = typical * rng.range(50, 200) / 100;
        let spent_eur = budget_eur * rng.range(70, 110) / 100;
        let label = channel.replace('_', " ").to_lowercase();
        d.campaigns.push(CampaignRow {
            line: i as u64 + 1,
            id: format!("C{i}"),
            name: format!("{} {label} #{i}", first_day.format("%Y-%m")),
            channel: channel.to_owned(),
            kind: Some(kind),
            status: Some(if last_day < at(end).date_naive() {
                CampaignStatus::Completed
            } else {
                CampaignStatus::Active
            }),
            tracking_code: Patch::Set(format!("seed-c{i}")),
            start_date: Patch::Set(first_day),
            end_date: Patch::Set(last_day),
            budget: Patch::Set(budget_eur * 100),
            expected_revenue: Patch::Set(budget_eur * rng.range(2, 9) * 100),
            expected_leads: Patch::Keep,
            cost: Patch::Keep,
        });
        // One to three cost lines adding up to what was spent.
        let parts = rng.range(1, 4);
        let mut left = spent_eur * 100 + rng.range(0, 100);
        for k in 0..parts {
            let amount = if k == parts - 1 { left } else { left * rng.range(30, 70) / 100 };
            left -= amount;
            let category = if k == 0 {
                category
            } else {
                *rng.pick(&[CostCategory::Content, CostCategory::Software, CostCategory::Other])
            };
            d.costs.push(CostRow {
                line: d.costs.len() as u64 + 2,
                campaign_id: format!("C{i}"),
                date: first_day + Duration::days(k * 7),
                category: category.to_string(),
                amount,
                note: None,
            });
        }
    }

    // Leads, in order of creation; the account of each, and the leads of each account.
    let mut created: Vec<i64> = (0..n).map(|_| rng.range(start, end - DAY)).collect();
    created.sort_unstable();
    let lead_account: Vec<usize> = (0..n).map(|_| rng.below(n_accounts as u64) as usize).collect();
    let mut account_leads: Vec<Vec<usize>> = vec![Vec::new(); n_accounts];
    for (l, &a) in lead_account.iter().enumerate() {
        account_leads[a].push(l);
    }

    // Opportunities with their buying centers; when each lead's first deal opened and was won.
    let mut opened: Vec<Option<i64>> = vec![None; n];
    let mut won_at: Vec<Option<i64>> = vec![None; n];
    let mut customer_accounts = vec![false; n_accounts];
    let candidates = created.partition_point(|&c| c < end - 60 * DAY).max(1);
    for i in 1..=n_opps {
        let seed_lead = rng.below(candidates as u64) as usize;
        let acc = lead_account[seed_lead];
        let open_at = (created[seed_lead] + rng.range(DAY, 90 * DAY)).min(end - DAY);
        let close_at = open_at + rng.range(7 * DAY, 300 * DAY);
        let status = if close_at >= end {
            OpportunityStatus::Open
        } else if rng.chance(0.35) {
            OpportunityStatus::Won
        } else {
            OpportunityStatus::Lost
        };
        let closed = (status != OpportunityStatus::Open).then_some(close_at);
        let size = 1 + (accounts[acc].employees as f64).log10().max(0.0) as i64;
        let amount = rng.range(20, 400) * 250 * size * 100 + rng.range(0, 100);
        let members = &account_leads[acc];
        let k = [1, 2, 3, 4][rng.weighted(&[30, 35, 22, 13])].min(members.len());
        let pos = members.iter().position(|&l| l == seed_lead).expect("the seed lead is a member");
        for j in 0..k {
            let l = members[(pos + j) % members.len()];
            opened[l] = Some(opened[l].map_or(open_at, |t| t.min(open_at)));
            if status == OpportunityStatus::Won {
                won_at[l] = Some(won_at[l].map_or(close_at, |t| t.min(close_at)));
                customer_accounts[acc] = true;
            }
            let role = if j == 0 {
                *rng.pick(&["Decision maker", "Champion"])
            } else {
                *rng.pick(OTHER_ROLES)
            };
            d.contacts.push(ContactRow {
                line: d.contacts.len() as u64 + 2,
                opportunity_id: format!("O{i}"),
                lead_id: format!("L{}", l + 1),
                role: role.to_owned(),
                is_primary: Some(j == 0),
            });
        }
        d.opportunities.push(OpportunityRow {
            line: i as u64 + 1,
            id: format!("O{i}"),
            account_id: format!("A{}", acc + 1),
            name: Some(format!("{} – {}", accounts[acc].name, rng.pick(PRODUCTS))),
            amount,
            currency: None,
            status,
            owner_id: Patch::Set(format!("U{}", rng.range(1, n_users as i64 + 1))),
            expected_close_date: Patch::Set(at(close_at.min(end + 365 * DAY)).date_naive()),
            created_at: at(open_at),
            closed_at: closed.map(at),
        });
    }

    for (i, a) in accounts.iter().enumerate() {
        d.accounts.push(AccountRow {
            line: i as u64 + 2,
            id: format!("A{}", i + 1),
            name: a.name.clone(),
            domain: Patch::Set(a.domain.clone()),
            industry: Patch::Set(a.industry.to_owned()),
            employee_count: Patch::Set(a.employees),
            annual_revenue: Patch::Set(a.employees * rng.range(80, 250) * 1_000 * 100),
            country: Patch::Set(a.country.to_owned()),
            customer_status: Some(if customer_accounts[i] {
                LifecycleStatus::ExistingCustomer
            } else {
                LifecycleStatus::Lead
            }),
        });
    }

    for l in 0..n {
        let a = &accounts[lead_account[l]];
        let (first, last) = (rng.pick(FIRST), rng.pick(LAST));
        let (title, role) = TITLES[rng.weighted(TITLE_W)];
        let stage = match (won_at[l], opened[l]) {
            (Some(_), _) => "CUSTOMER",
            (None, Some(_)) => "OPPORTUNITY",
            _ => ["LEAD", "MQL", "SQL", "NURTURE", "DISQUALIFIED"][rng.weighted(&[50, 20, 10, 12, 8])],
        };
        let until = opened[l].map(|o| (o.max(created[l]), won_at[l].map(|w| w.max(o))));
        let history = stage_path(stage, created[l], until, &mut || rng.range(DAY, 45 * DAY), end - 1);
        let converted = history.iter().find(|(k, _)| k == "MQL").map(|(_, t)| *t);
        let late = !matches!(stage, "LEAD" | "MQL" | "DISQUALIFIED");
        d.leads.push(LeadRow {
            line: l as u64 + 2,
            id: format!("L{}", l + 1),
            account_id: Patch::Set(format!("A{}", lead_account[l] + 1)),
            email: Patch::Set(format!(
                "{}.{}{}@{}",
                first.to_lowercase(),
                last.to_lowercase().replace(' ', ""),
                l + 1,
                a.domain
            )),
            first_name: Patch::Set((*first).to_owned()),
            last_name: Patch::Set((*last).to_owned()),
            job_title: Patch::Set(title.to_owned()),
            decision_role: Patch::Set(role.to_owned()),
            industry: Patch::Set(a.industry.to_owned()),
            company_size: Patch::Set(size_band(a.employees).to_owned()),
            country: Patch::Set(
                if rng.chance(0.9) {
                    a.country
                } else {
                    COUNTRIES[rng.weighted(COUNTRY_W)]
                }
                .to_owned(),
            ),
            phone: if rng.chance(0.5) {
                Patch::Set(format!("+49 30 {:07}", l + 1))
            } else {
                Patch::Keep
            },
            lifecycle_status: Some(if stage == "CUSTOMER" {
                LifecycleStatus::NewCustomer
            } else {
                LifecycleStatus::Lead
            }),
            owner_id: if late {
                Patch::Set(format!("U{}", rng.range(1, n_users as i64 + 1)))
            } else {
                Patch::Keep
            },
            stage: Some(stage.to_owned()),
            created_at: Some(at(created[l])),
            converted_at: converted.map_or(Patch::Keep, Patch::Set),
            history,
            ..LeadRow::default()
        });
    }

    // About ten touchpoints per lead, more for buying-center members; most of them answer a
    // campaign that had started, recent ones more likely.
    let mut t = 0_u64;
    for l in 0..n {
        let count = rng.range(1, 20) * if opened[l].is_some() { 3 } else { 2 } / 2;
        let lo = created[l] - 30 * DAY;
        let hi = (created[l] + 365 * DAY).min(end - 1);
        for _ in 0..count {
            t += 1;
            let occurred = lo + ((hi - lo) as f64 * rng.unit().powf(1.5)) as i64;
            let started = starts.partition_point(|&s| s <= occurred);
            let (campaign, touch_type) = if started == 0 || rng.chance(0.1) {
                (None, *rng.pick(&["PAGE_VIEW", "FORM_SUBMIT"]))
            } else {
                let back = (started as f64 * rng.unit().powi(2)) as usize;
                let c = started - 1 - back.min(started - 1);
                (Some(format!("C{}", c + 1)), *rng.pick(CHANNELS[campaign_channel[c]].1))
            };
            d.touchpoints.push(TouchpointRow {
                line: t + 1,
                id: format!("T{t}"),
                lead_id: format!("L{}", l + 1),
                campaign_id: campaign,
                touch_type: touch_type.to_owned(),
                occurred_at: at(occurred),
            });
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, Statement};

    use super::*;

    #[test]
    fn rng_is_deterministic_and_in_range() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            let x = a.range(-5, 5);
            assert!((-5..5).contains(&x));
            b.range(-5, 5);
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }

    #[test]
    fn stage_paths_are_ordered_and_end_in_the_stage() {
        let mut step = || DAY;
        let p = stage_path("CUSTOMER", 0, Some((30 * DAY, Some(90 * DAY))), &mut step, 1_000 * DAY);
        let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["LEAD", "MQL", "SQL", "OPPORTUNITY", "CUSTOMER"]);
        assert!(p.windows(2).all(|w| w[0].1 <= w[1].1));
        assert_eq!(p[3].1.timestamp(), 30 * DAY);
        let p = stage_path("NURTURE", 0, None, &mut step, DAY / 2);
        assert!(p.iter().all(|(_, t)| t.timestamp() <= DAY / 2));
    }

    /// Touchpoints, those with a campaign, the campaigns' counters, the deals' amounts.
    async fn sums(db: &Db, ws: &str) -> [i64; 4] {
        let sql = "SELECT (SELECT COUNT(*) FROM touchpoints WHERE workspace_id = w.id), \
                   (SELECT COUNT(*) FROM touchpoints WHERE workspace_id = w.id AND campaign_id IS NOT NULL), \
                   (SELECT SUM(touchpoint_count) FROM campaigns WHERE workspace_id = w.id), \
                   (SELECT SUM(amount_minor) FROM opportunities WHERE workspace_id = w.id) \
                   FROM workspaces w WHERE w.name = ?";
        let row = db
            .conn
            .query_one_raw(Statement::from_sql_and_values(db.backend(), sql, [ws.into()]))
            .await
            .unwrap()
            .unwrap();
        [0, 1, 2, 3].map(|i| row.try_get_by_index::<i64>(i).unwrap())
    }

    #[tokio::test]
    async fn the_same_seed_gives_the_same_data() {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        db.migrate().await.unwrap();
        let first = run(&db, "a", 400, 7, &Progress::hidden()).await.unwrap();
        run(&db, "b", 400, 7, &Progress::hidden()).await.unwrap();
        run(&db, "c", 400, 8, &Progress::hidden()).await.unwrap();
        let (a, b, c) = (sums(&db, "a").await, sums(&db, "b").await, sums(&db, "c").await);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a[1], a[2], "campaign counters match the touchpoints");
        assert!(a[0] > 400 * 5 && a[1] < a[0]);
        assert!(first.contains("leads 400 new"), "{first}");
        // Seeding again changes nothing.
        let again = run(&db, "a", 400, 7, &Progress::hidden()).await.unwrap();
        assert!(!again.contains(" new"), "{again}");
        assert_eq!(sums(&db, "a").await, a);
    }
}
