//! The demo company (`closedloop serve --demo`): HydroTec, an industrial hydraulics manufacturer
//! with its parent in Germany and sales subsidiaries in France, Italy and Spain, one workspace.
//!
//! The story: HydroTec sells hydraulic power units, cylinders and the HydroStat pressure
//! controllers to machine builders and other manufacturers. Marketing runs a whitepaper, a
//! newsletter, webinars, trade fairs (Hannover Messe and the subsidiaries' home fairs), LinkedIn
//! and search ads, a cross-sell of cleaning and maintenance kits and an upsell from HydroStat 2000
//! to HydroStat 3000; each country's sales reps own their leads and deals. Three buyer personas
//! describe whom marketing looks for. About 2,000 leads, 20,000 touchpoints and 150 deals with
//! their buying centers over two years that end on the day the demo is loaded: the story is told
//! once on a fixed calendar (a fixed seed) and moved by whole days, so a given day always gives
//! the same rows and every count and amount is the same on every day.
//!
//! The rows are built as an import [`Dataset`] and written by the import's code; personas and
//! their criteria, and the handoff loop (routing rules, handoffs and their events), are written
//! beside them in the same transaction.
use std::collections::HashSet;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use entity::workspace;
use sea_orm::{ConnectionTrait, EntityTrait, Value};

use super::import::{self, AccountRow, CampaignRow, ContactRow, CostRow, Dataset, LeadRow, OpportunityRow, TouchpointRow, UserRow};
use super::seed::{Rng, size_band, stage_path};
use crate::BoxError;
use crate::db::Db;
use crate::domain::vocab::{CampaignKind, CampaignStatus, CostCategory, LifecycleStatus, OpportunityStatus, Role};
use crate::service::{self, Patch};
use crate::store::bulk::Inserter;

pub const WORKSPACE: &str = "hydraulik-demo";

/// Loads the demo, its story ending on `day` (its "now" is 00:00 UTC of that day), into an empty
/// database and returns a new ADMIN key; `None` when the database holds a workspace already
/// (nothing is changed then).
pub async fn load(db: &Db, day: NaiveDate) -> Result<Option<String>, BoxError> {
    if workspace::Entity::find().one(&db.conn).await?.is_some() {
        return Ok(None);
    }
    let txn = db.begin_write_unscoped().await?;
    // Another process may have been quicker.
    if workspace::Entity::find().one(&*txn).await?.is_some() {
        return Ok(None);
    }
    write_in(&*txn, day).await?;
    txn.commit().await?;
    let (key, _) = service::workspace::create_key(db, WORKSPACE, Role::Admin, "demo admin", None).await?;
    Ok(Some(key))
}

/// Writes the demo workspace, its story ending on `day`, beside any others (for tests); an
/// ADMIN key of it.
pub async fn load_beside(db: &Db, day: NaiveDate) -> Result<String, BoxError> {
    let txn = db.begin_write_unscoped().await?;
    write_in(&*txn, day).await?;
    txn.commit().await?;
    let (key, _) = service::workspace::create_key(db, WORKSPACE, Role::Admin, "demo admin", None).await?;
    Ok(key)
}

async fn write_in(txn: &impl sea_orm::ConnectionTrait, day: NaiveDate) -> Result<(), BoxError> {
    let data = story(day);
    let ws = import::workspace_in(txn, WORKSPACE).await?;
    write_personas(txn, ws.id).await?;
    import::apply_in(txn, &ws, data).await?;
    write_scoring_model(txn, ws.id).await?;
    super::demo_handoffs::write(txn, ws.id, now_of(day)).await?;
    Ok(())
}

/// The story is told on this calendar: it begins on 2024-01-01 and its "now" is 2026-01-01.
fn told_until() -> DateTime<Utc> {
    super::seed::end()
}

/// The demo's "now" when it is loaded on `day`: 00:00 UTC of that day, so that nothing in it
/// lies in the future of a user who loads it that day.
pub fn now_of(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).expect("valid time").and_utc()
}

/// (name, description, match threshold, criteria: attribute, operator, values, weight)
type Persona = (
    &'static str,
    &'static str,
    i32,
    &'static [(&'static str, &'static str, &'static str, i32)],
);

const PERSONAS: &[Persona] = &[
    (
        "Peter Produzent",
        "Production manager at a machine builder with 50-500 staff: runs the shop floor, wants presses that do not stop.",
        70,
        &[
            (
                "jobTitle",
                "CONTAINS",
                r#"["Produktion", "Production", "produzione", "producción"]"#,
                40,
            ),
            ("industry", "EQUALS", r#"["Machine building"]"#, 30),
            ("employeeCount", "RANGE", r#"[50, 500]"#, 20),
            ("country", "IN", r#"["DE", "AT", "CH", "FR", "IT", "ES"]"#, 10),
        ],
    ),
    (
        "Erika Einkauf",
        "Head of purchasing: compares total cost of ownership and delivery times, signs the framework contract.",
        60,
        &[
            (
                "jobTitle",
                "CONTAINS",
                r#"["Einkauf", "Purchasing", "achats", "acquisti", "compras"]"#,
                50,
            ),
            ("decisionRole", "EQUALS", r#"["Economic buyer"]"#, 30),
            ("companySize", "IN", r#"["50-199", "200-499", "500-999"]"#, 20),
        ],
    ),
    (
        "Gerd Geschäftsführer",
        "Managing director of a mid-sized manufacturer: decides on investments, wants productivity and few suppliers.",
        60,
        &[
            (
                "jobTitle",
                "CONTAINS",
                r#"["Geschäftsführer", "Managing Director", "Directeur général", "Amministratore delegato", "Director general"]"#,
                50,
            ),
            ("decisionRole", "EQUALS", r#"["Decision maker"]"#, 30),
            ("phone", "EXISTS", "[]", 20),
        ],
    ),
];

async fn write_personas(db: &impl ConnectionTrait, ws: i64) -> Result<(), BoxError> {
    let now = Utc::now();
    let mut personas = Inserter::new(
        "personas",
        &["workspace_id", "name", "description", "match_threshold", "created_at", "updated_at"],
    )
    .returning("name");
    for (name, description, threshold, _) in PERSONAS {
        let row = [
            ws.into(),
            (*name).into(),
            (*description).into(),
            (*threshold).into(),
            now.into(),
            now.into(),
        ];
        personas.push(db, row).await?;
    }
    let (_, ids) = personas.finish(db).await?;
    let mut criteria = Inserter::new(
        "persona_criteria",
        &[
            "workspace_id",
            "persona_id",
            "position",
            "attribute",
            "operator",
            "values",
            "weight",
            "created_at",
        ],
    );
    for (name, _, _, items) in PERSONAS {
        let persona_id = ids
            .iter()
            .find(|(_, n)| n == name)
            .map(|(id, _)| *id)
            .ok_or("persona not written")?;
        for (position, (attribute, operator, values, weight)) in items.iter().enumerate() {
            let values: serde_json::Value = serde_json::from_str(values)?;
            let row = [
                ws.into(),
                persona_id.into(),
                (position as i32).into(),
                (*attribute).into(),
                (*operator).into(),
                Value::Json(Some(Box::new(values))),
                (*weight).into(),
                now.into(),
            ];
            criteria.push(db, row).await?;
        }
    }
    criteria.finish(db).await?;
    Ok(())
}

/// The default scoring model: fit from leadership titles, decision roles, machine builders and
/// mid-sized companies; engagement from the default activity points. Every lead is scored in
/// bulk (no automatic handoffs: the demo's handoffs are its history).
async fn write_scoring_model(db: &impl ConnectionTrait, ws: i64) -> Result<(), BoxError> {
    use crate::domain::scoring::{ActivityRule, ProfileRule};
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};
    let rule = |attribute: &str, operator: &str, values: serde_json::Value, points: i32| ProfileRule {
        attribute: attribute.to_owned(),
        operator: operator.to_owned(),
        values,
        points,
    };
    let profile = vec![
        rule(
            "jobTitle",
            "CONTAINS",
            serde_json::json!([
                "leiter",
                "geschäftsführer",
                "directeur",
                "direttore",
                "director",
                "responsable",
                "head"
            ]),
            30,
        ),
        rule("decisionRole", "IN", serde_json::json!(["Decision maker", "Economic buyer"]), 30),
        rule("industry", "EQUALS", serde_json::json!(["Machine building"]), 20),
        rule("employeeCount", "RANGE", serde_json::json!([50, 1000]), 20),
    ];
    let now = Utc::now();
    let row = entity::scoring_model::ActiveModel {
        workspace_id: Set(ws),
        name: Set("HydroTec fit and engagement".into()),
        description: Set(Some("Leaders and buyers at machine builders of 50-1,000 staff, who engage.".into())),
        is_default: Set(true),
        half_life_seconds: Set(30 * 86_400),
        grade_a: Set(75),
        grade_b: Set(50),
        grade_c: Set(25),
        band_1: Set(100),
        band_2: Set(50),
        band_3: Set(20),
        mql_cells: Set(serde_json::json!(["A1", "A2", "B1"])),
        cooldown_days: Set(30),
        profile_rules: Set(serde_json::to_value(profile)?),
        activity_rules: Set(serde_json::to_value(ActivityRule::defaults())?),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    service::scoring::rescore_model(db, ws, &service::scoring::Scorer::new(row)).await?;
    Ok(())
}

/// A sales subsidiary: country, company, its reps (name, e-mail) and the markets they cover.
pub(super) struct Subsidiary {
    pub country: &'static str,
    pub company: &'static str,
    pub reps: &'static [(&'static str, &'static str)],
    pub markets: &'static [&'static str],
}

pub(super) const SUBSIDIARIES: &[Subsidiary] = &[
    Subsidiary {
        country: "DE",
        company: "HydroTec Hydraulik GmbH",
        reps: &[
            ("Katrin Becker", "k.becker@hydrotec.example"),
            ("Jonas Weber", "j.weber@hydrotec.example"),
            ("Stefan Hoffmann", "s.hoffmann@hydrotec.example"),
        ],
        markets: &["DE", "AT", "CH"],
    },
    Subsidiary {
        country: "FR",
        company: "HydroTec France SAS",
        reps: &[
            ("Claire Dubois", "c.dubois@hydrotec.example"),
            ("Julien Moreau", "j.moreau@hydrotec.example"),
        ],
        markets: &["FR"],
    },
    Subsidiary {
        country: "IT",
        company: "HydroTec Italia S.r.l.",
        reps: &[
            ("Giulia Rossi", "g.rossi@hydrotec.example"),
            ("Marco Bianchi", "m.bianchi@hydrotec.example"),
        ],
        markets: &["IT"],
    },
    Subsidiary {
        country: "ES",
        company: "HydroTec Ibérica S.L.",
        reps: &[
            ("Lucía García", "l.garcia@hydrotec.example"),
            ("Javier Martínez", "j.martinez@hydrotec.example"),
        ],
        markets: &["ES"],
    },
];

/// Per market: share of accounts, company-name patterns, family names, first names.
struct Market {
    country: &'static str,
    weight: u32,
    patterns: &'static [&'static str],
    stems: &'static [&'static str],
    first: &'static [&'static str],
    /// Job titles per function, in the order of [`FUNCTIONS`].
    titles: [&'static str; 5],
}

const MARKETS: &[Market] = &[
    Market {
        country: "DE",
        weight: 44,
        patterns: &[
            "{} Maschinenbau GmbH",
            "{} Anlagenbau GmbH & Co. KG",
            "{} Pressen GmbH",
            "{} Umformtechnik AG",
        ],
        stems: &[
            "Brandt", "Keller", "Lindner", "Vogt", "Hartmann", "Krüger", "Seidel", "Franke", "Ludwig", "Böhm", "Winter", "Graf", "Kraus",
            "Albrecht", "Schuster", "Engel",
        ],
        first: &[
            "Peter", "Thomas", "Andrea", "Sabine", "Michael", "Claudia", "Frank", "Jana", "Markus", "Petra", "Uwe", "Katja",
        ],
        titles: [
            "Produktionsleiter",
            "Einkaufsleiterin",
            "Geschäftsführer",
            "Leiter Instandhaltung",
            "Konstrukteur",
        ],
    },
    Market {
        country: "FR",
        weight: 20,
        patterns: &["{} Industrie SAS", "Ateliers {}", "{} Mécanique SA"],
        stems: &[
            "Lefèvre",
            "Girard",
            "Fontaine",
            "Rousseau",
            "Chevalier",
            "Perrin",
            "Mercier",
            "Blanc",
            "Garnier",
            "Faure",
        ],
        first: &[
            "Pierre", "Sophie", "Nicolas", "Camille", "Laurent", "Isabelle", "Julien", "Nathalie",
        ],
        titles: [
            "Directeur de production",
            "Responsable achats",
            "Directeur général",
            "Responsable maintenance",
            "Ingénieur d'études",
        ],
    },
    Market {
        country: "IT",
        weight: 17,
        patterns: &["{} Meccanica S.p.A.", "Officine {} S.r.l.", "{} Impianti S.r.l."],
        stems: &[
            "Ferrari", "Colombo", "Ricci", "Marino", "Greco", "Bruno", "Gallo", "Conti", "Costa", "Fontana",
        ],
        first: &["Luca", "Giulia", "Alessandro", "Francesca", "Matteo", "Chiara", "Davide", "Elena"],
        titles: [
            "Responsabile di produzione",
            "Responsabile acquisti",
            "Amministratore delegato",
            "Responsabile manutenzione",
            "Progettista",
        ],
    },
    Market {
        country: "ES",
        weight: 13,
        patterns: &["{} Maquinaria S.L.", "Talleres {} S.A.", "Industrias {} S.L."],
        stems: &[
            "Navarro", "Torres", "Ruiz", "Serrano", "Molina", "Ortega", "Delgado", "Castro", "Romero", "Vidal",
        ],
        first: &["Carlos", "María", "Javier", "Laura", "Pablo", "Carmen", "Sergio", "Ana"],
        titles: [
            "Jefe de producción",
            "Jefe de compras",
            "Director general",
            "Jefe de mantenimiento",
            "Ingeniero de diseño",
        ],
    },
    Market {
        country: "AT",
        weight: 4,
        patterns: &["{} Maschinenbau GmbH", "{} Stahlbau GmbH"],
        stems: &["Gruber", "Huber", "Wimmer", "Pichler", "Moser"],
        first: &["Florian", "Johanna", "Lukas", "Theresa"],
        titles: [
            "Produktionsleiter",
            "Einkaufsleiter",
            "Geschäftsführerin",
            "Leiter Instandhaltung",
            "Konstrukteurin",
        ],
    },
    Market {
        country: "CH",
        weight: 2,
        patterns: &["{} Maschinen AG"],
        stems: &["Meier", "Brunner", "Baumann", "Frei"],
        first: &["Reto", "Simone", "Beat", "Corinne"],
        titles: [
            "Produktionsleiter",
            "Leiterin Einkauf",
            "Geschäftsführer",
            "Leiter Instandhaltung",
            "Konstrukteur",
        ],
    },
];

/// Functions of contacts: decision role and how often they appear.
const FUNCTIONS: &[(&str, u32)] = &[
    ("Influencer", 34),          // production
    ("Economic buyer", 18),      // purchasing
    ("Decision maker", 12),      // managing director
    ("User", 20),                // maintenance
    ("Technical evaluator", 16), // engineering
];

const INDUSTRIES: &[(&str, u32)] = &[
    ("Machine building", 45),
    ("Automotive supplier", 15),
    ("Steel & metalworking", 12),
    ("Agricultural machinery", 10),
    ("Plastics processing", 10),
    ("Food processing", 8),
];

/// A campaign of the story.
struct Story {
    id: &'static str,
    /// `{year}` stands for the year the campaign's middle falls in once the story is moved.
    name: &'static str,
    channel: &'static str,
    kind: CampaignKind,
    start: (i32, u32, u32),
    end: Option<(i32, u32, u32)>,
    budget: i64,
    expected: i64,
    /// The leads it is expected to source (first touch).
    expected_leads: i64,
    /// (category, amount in cents, days after the start)
    costs: &'static [(CostCategory, i64, i64)],
    /// Markets it reaches; empty for all.
    markets: &'static [&'static str],
    /// How much it is used, relative to the others.
    weight: u32,
}

use CostCategory::{Content, Discounts, Media, Other, Production, Software, Tickets};

const CAMPAIGNS: &[Story] = &[
    Story {
        id: "cmp-whitepaper",
        name: "Whitepaper: Hydraulic systems for industry",
        channel: "CONTENT",
        kind: CampaignKind::Acquisition,
        start: (2024, 2, 1),
        end: Some((2024, 12, 31)),
        budget: 1_800_000,
        expected: 24_000_000,
        expected_leads: 220,
        costs: &[(Content, 780_000, 0), (Production, 240_000, 10), (Media, 635_050, 30)],
        markets: &[],
        weight: 14,
    },
    Story {
        id: "cmp-news-y1",
        name: "Newsletter HydroNews {year}",
        channel: "EMAIL",
        kind: CampaignKind::Nurture,
        start: (2024, 1, 15),
        end: Some((2024, 12, 15)),
        budget: 600_000,
        expected: 6_000_000,
        expected_leads: 250,
        costs: &[(Software, 288_000, 0), (Content, 260_000, 0)],
        markets: &[],
        weight: 16,
    },
    Story {
        id: "cmp-news-y2",
        name: "Newsletter HydroNews {year}",
        channel: "EMAIL",
        kind: CampaignKind::Nurture,
        start: (2025, 1, 15),
        end: Some((2025, 12, 15)),
        budget: 650_000,
        expected: 7_500_000,
        expected_leads: 200,
        costs: &[(Software, 300_000, 0), (Content, 289_990, 0)],
        markets: &[],
        weight: 16,
    },
    Story {
        id: "cmp-webinar-maintenance",
        name: "Webinar: Predictive maintenance for hydraulic presses",
        channel: "WEBINAR",
        kind: CampaignKind::Acquisition,
        start: (2024, 9, 10),
        end: Some((2024, 10, 15)),
        budget: 900_000,
        expected: 12_000_000,
        expected_leads: 60,
        costs: &[(Software, 120_000, 0), (Production, 350_000, 5), (Media, 279_900, 7)],
        markets: &[],
        weight: 6,
    },
    Story {
        id: "cmp-webinar-hs3000",
        name: "Webinar: HydroStat 3000 live demo",
        channel: "WEBINAR",
        kind: CampaignKind::Acquisition,
        start: (2025, 3, 4),
        end: Some((2025, 3, 25)),
        budget: 750_000,
        expected: 15_000_000,
        expected_leads: 40,
        costs: &[(Software, 120_000, 0), (Production, 410_000, 3)],
        markets: &[],
        weight: 6,
    },
    Story {
        id: "cmp-hm-y1",
        name: "Hannover Messe {year}",
        channel: "TRADE_FAIR",
        kind: CampaignKind::Acquisition,
        start: (2024, 4, 22),
        end: Some((2024, 4, 26)),
        budget: 9_500_000,
        expected: 90_000_000,
        expected_leads: 60,
        costs: &[
            (Production, 4_850_000, -60),
            (Tickets, 980_000, -30),
            (Media, 1_200_000, -14),
            (Other, 1_430_000, 0),
        ],
        markets: &["DE", "AT", "CH"],
        weight: 9,
    },
    Story {
        id: "cmp-hm-y2",
        name: "Hannover Messe {year}",
        channel: "TRADE_FAIR",
        kind: CampaignKind::Acquisition,
        // A year and a day after the last one, so the two never fall in one year when moved.
        start: (2025, 4, 23),
        end: Some((2025, 4, 27)),
        budget: 11_000_000,
        expected: 110_000_000,
        expected_leads: 50,
        costs: &[
            (Production, 5_320_000, -60),
            (Tickets, 1_050_000, -30),
            (Media, 1_480_000, -14),
            (Other, 1_615_000, 0),
        ],
        markets: &["DE", "AT", "CH"],
        weight: 9,
    },
    Story {
        id: "cmp-global-industrie",
        name: "Global Industrie Lyon {year}",
        channel: "TRADE_FAIR",
        kind: CampaignKind::Acquisition,
        start: (2025, 3, 11),
        end: Some((2025, 3, 14)),
        budget: 3_800_000,
        expected: 30_000_000,
        expected_leads: 20,
        costs: &[(Production, 2_100_000, -45), (Tickets, 420_000, -20), (Other, 560_000, 0)],
        markets: &["FR"],
        weight: 8,
    },
    Story {
        id: "cmp-mecspe",
        name: "MECSPE Bologna {year}",
        channel: "TRADE_FAIR",
        kind: CampaignKind::Acquisition,
        start: (2024, 3, 6),
        end: Some((2024, 3, 8)),
        budget: 3_000_000,
        expected: 24_000_000,
        expected_leads: 15,
        costs: &[(Production, 1_650_000, -45), (Tickets, 380_000, -20), (Other, 495_000, 0)],
        markets: &["IT"],
        weight: 8,
    },
    Story {
        id: "cmp-biemh",
        name: "BIEMH Bilbao {year}",
        channel: "TRADE_FAIR",
        kind: CampaignKind::Acquisition,
        start: (2024, 6, 3),
        end: Some((2024, 6, 7)),
        budget: 2_800_000,
        expected: 20_000_000,
        expected_leads: 15,
        costs: &[(Production, 1_540_000, -45), (Tickets, 350_000, -20), (Other, 410_000, 0)],
        markets: &["ES"],
        weight: 8,
    },
    Story {
        id: "cmp-linkedin-hs3000",
        name: "LinkedIn Ads: HydroStat 3000 launch",
        channel: "PAID_SOCIAL",
        kind: CampaignKind::Acquisition,
        start: (2025, 2, 1),
        end: Some((2025, 6, 30)),
        budget: 2_400_000,
        expected: 28_000_000,
        expected_leads: 100,
        costs: &[
            (Content, 190_000, 0),
            (Media, 725_000, 28),
            (Media, 725_000, 59),
            (Media, 725_000, 89),
        ],
        markets: &[],
        weight: 10,
    },
    Story {
        id: "cmp-linkedin-dach",
        name: "LinkedIn Ads: Production managers DACH",
        channel: "PAID_SOCIAL",
        kind: CampaignKind::Acquisition,
        start: (2024, 5, 1),
        end: Some((2024, 8, 31)),
        budget: 1_500_000,
        expected: 16_000_000,
        expected_leads: 80,
        costs: &[(Media, 480_000, 30), (Media, 480_000, 61), (Media, 512_345, 92)],
        markets: &["DE", "AT", "CH"],
        weight: 8,
    },
    Story {
        id: "cmp-google-ads",
        name: "Google Ads: Hydraulikaggregate",
        channel: "PAID_SEARCH",
        kind: CampaignKind::Acquisition,
        start: (2024, 1, 1),
        end: Some((2025, 12, 31)),
        budget: 3_600_000,
        expected: 42_000_000,
        expected_leads: 150,
        costs: &[
            (Media, 410_000, 90),
            (Media, 445_500, 181),
            (Media, 430_250, 273),
            (Media, 470_000, 365),
            (Media, 455_000, 455),
            (Media, 462_750, 546),
            (Media, 448_900, 638),
        ],
        markets: &[],
        weight: 12,
    },
    Story {
        id: "cmp-crosssell-cleaning",
        name: "Cross-sell: cleaning & maintenance kits",
        channel: "EMAIL",
        kind: CampaignKind::CrossSell,
        start: (2024, 10, 1),
        end: Some((2025, 3, 31)),
        budget: 800_000,
        expected: 14_000_000,
        expected_leads: 30,
        costs: &[(Software, 90_000, 0), (Content, 120_000, 0), (Discounts, 460_000, 120)],
        markets: &[],
        weight: 6,
    },
    Story {
        id: "cmp-upsell-hs3000",
        name: "Upsell: HydroStat 2000 to HydroStat 3000",
        channel: "EMAIL",
        kind: CampaignKind::Upsell,
        start: (2025, 5, 1),
        end: Some((2025, 11, 30)),
        budget: 1_400_000,
        expected: 52_000_000,
        expected_leads: 30,
        costs: &[(Content, 140_000, 0), (Production, 220_000, 14), (Discounts, 850_000, 150)],
        markets: &[],
        weight: 7,
    },
    Story {
        id: "cmp-customer-day",
        name: "Customer day Stuttgart {year}",
        channel: "EVENT",
        kind: CampaignKind::Loyalty,
        start: (2025, 9, 18),
        end: Some((2025, 9, 18)),
        budget: 1_200_000,
        expected: 9_000_000,
        expected_leads: 10,
        costs: &[(Production, 640_000, -20), (Tickets, 185_000, -10), (Other, 312_480, 0)],
        markets: &["DE", "AT", "CH"],
        weight: 4,
    },
    Story {
        id: "cmp-website",
        name: "Website & SEO",
        channel: "ORGANIC",
        kind: CampaignKind::Acquisition,
        start: (2024, 1, 1),
        end: None,
        budget: 1_000_000,
        expected: 12_000_000,
        expected_leads: 120,
        costs: &[(Software, 240_000, 0), (Content, 310_000, 180), (Content, 295_000, 540)],
        markets: &[],
        weight: 10,
    },
];

/// Touchpoint types per channel.
fn types_of(channel: &str) -> &'static [&'static str] {
    match channel {
        "CONTENT" => &["WHITEPAPER_DOWNLOAD", "PAGE_VIEW", "PAGE_VIEW"],
        "EMAIL" => &["EMAIL_SENT", "EMAIL_OPEN", "EMAIL_OPEN", "EMAIL_CLICK"],
        "WEBINAR" => &["WEBINAR_REGISTER", "WEBINAR_ATTEND"],
        "TRADE_FAIR" => &["TRADE_FAIR_SCAN", "TRADE_FAIR_SCAN", "MEETING"],
        "PAID_SOCIAL" | "PAID_SEARCH" => &["AD_CLICK", "AD_CLICK", "FORM_SUBMIT"],
        "EVENT" => &["EVENT_VISIT", "MEETING"],
        _ => &["PAGE_VIEW", "PAGE_VIEW", "FORM_SUBMIT"],
    }
}

const NEW_BUSINESS: &[(&str, i64, i64)] = &[
    ("HydroStat 3000 pressure control", 1_800_000, 9_500_000),
    ("Hydraulic power unit for press line", 4_500_000, 45_000_000),
    ("Cylinder series for forming presses", 2_200_000, 18_000_000),
    ("Retrofit of hydraulic system", 3_000_000, 26_000_000),
];
const CROSS_SELL: (&str, i64, i64) = ("Cleaning & maintenance contract", 800_000, 4_800_000);
const UPSELL: (&str, i64, i64) = ("Upgrade HydroStat 2000 to HydroStat 3000", 2_500_000, 16_000_000);

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).expect("in range")
}

fn start_of(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0).expect("valid time").and_utc().timestamp()
}

/// The demo's rows for a demo loaded on `day`: the story moved by whole days so that its "now"
/// is 00:00 UTC of `day`; the same on every call.
pub fn story(day: NaiveDate) -> Dataset {
    let mut d = told();
    let by = (now_of(day) - told_until()).num_days();
    move_by(&mut d, Duration::days(by));
    d
}

/// Moves every time of the story by `by`, and names the campaigns after the years they fall in.
fn move_by(d: &mut Dataset, by: Duration) {
    let day = |p: &mut Patch<NaiveDate>| *p = std::mem::take(p).map(|x| x + by);
    for c in &mut d.campaigns {
        day(&mut c.start_date);
        day(&mut c.end_date);
        if let Patch::Set(start) = c.start_date {
            let last = match c.end_date {
                Patch::Set(last) => last,
                _ => start,
            };
            let middle = start + (last - start) / 2;
            c.name = c.name.replace("{year}", &middle.year().to_string());
        }
    }
    for c in &mut d.costs {
        c.date += by;
    }
    for o in &mut d.opportunities {
        day(&mut o.expected_close_date);
        o.created_at += by;
        o.closed_at = o.closed_at.map(|t| t + by);
    }
    for t in &mut d.touchpoints {
        t.occurred_at += by;
    }
    for l in &mut d.leads {
        l.created_at = l.created_at.map(|t| t + by);
        l.converted_at = std::mem::take(&mut l.converted_at).map(|t| t + by);
        for (_, t) in &mut l.history {
            *t += by;
        }
    }
}

/// The story on the calendar it is told on ([`told_until`]).
fn told() -> Dataset {
    const DAY: i64 = 86_400;
    let mut rng = Rng::new(0x4879_6472_6f54_6563); // "HydroTec"
    let end = told_until().timestamp();
    let first_day = start_of(day(2024, 1, 1));
    let mut d = Dataset::default();

    // Sales reps per subsidiary, and marketing at the parent.
    for s in SUBSIDIARIES {
        for (i, (name, email)) in s.reps.iter().enumerate() {
            d.users.push(UserRow {
                line: d.users.len() as u64 + 2,
                id: format!("rep-{}-{}", s.country.to_lowercase(), i + 1),
                name: (*name).to_owned(),
                email: Patch::Set((*email).to_owned()),
                team: Patch::Set(format!("Sales {} ({})", s.country, s.company)),
                active: Some(true),
            });
        }
    }
    d.users.push(UserRow {
        line: d.users.len() as u64 + 2,
        id: "mkt-1".into(),
        name: "Anna Schneider".into(),
        email: Patch::Set("a.schneider@hydrotec.example".into()),
        team: Patch::Set("Marketing (HydroTec Hydraulik GmbH)".into()),
        active: Some(true),
    });
    let rep_of = |country: &str, n: usize| -> String {
        let s = SUBSIDIARIES
            .iter()
            .find(|s| s.markets.contains(&country))
            .unwrap_or(&SUBSIDIARIES[0]);
        format!("rep-{}-{}", s.country.to_lowercase(), n % s.reps.len() + 1)
    };

    // Campaigns and their cost lines.
    let market_weights: Vec<u32> = MARKETS.iter().map(|m| m.weight).collect();
    for (i, c) in CAMPAIGNS.iter().enumerate() {
        let start = day(c.start.0, c.start.1, c.start.2);
        let last = c.end.map(|(y, m, dd)| day(y, m, dd));
        d.campaigns.push(CampaignRow {
            line: i as u64 + 2,
            id: c.id.to_owned(),
            name: c.name.to_owned(),
            channel: c.channel.to_owned(),
            kind: Some(c.kind),
            status: Some(match last {
                Some(l) if l < at(end).date_naive() => CampaignStatus::Completed,
                _ => CampaignStatus::Active,
            }),
            tracking_code: Patch::Set(c.id.trim_start_matches("cmp-").to_owned()),
            start_date: Patch::Set(start),
            end_date: last.map_or(Patch::Clear, Patch::Set),
            budget: Patch::Set(c.budget),
            expected_revenue: Patch::Set(c.expected),
            expected_leads: Patch::Set(c.expected_leads),
            cost: Patch::Keep,
        });
        for (category, amount, offset) in c.costs {
            d.costs.push(CostRow {
                line: d.costs.len() as u64 + 2,
                campaign_id: c.id.to_owned(),
                date: start + Duration::days(*offset),
                category: category.to_string(),
                amount: *amount,
                note: None,
            });
        }
    }

    // Accounts: about 250 companies; a third bought HydroStat 2000 before 2024 (the installed base).
    struct Account {
        market: usize,
        employees: i64,
        industry: &'static str,
        domain: String,
        installed: bool,
    }
    let mut accounts = Vec::new();
    let mut names = HashSet::new();
    while accounts.len() < 250 {
        let m = rng.weighted(&market_weights);
        let market = &MARKETS[m];
        let pattern = *rng.pick(market.patterns);
        let mut stem = (*rng.pick(market.stems)).to_owned();
        if names.contains(&pattern.replace("{}", &stem)) {
            // Family businesses of two founders keep the names apart.
            stem = format!("{stem} & {}", rng.pick(market.stems));
        }
        let name = pattern.replace("{}", &stem);
        if !names.insert(name.clone()) {
            continue;
        }
        let employees = (20.0_f64 * 150.0_f64.powf(rng.unit().powf(1.3))).round() as i64;
        let industry = INDUSTRIES[rng.weighted(&INDUSTRIES.iter().map(|x| x.1).collect::<Vec<_>>())].0;
        let slug = domain_slug(&name);
        let n = accounts.len() + 1;
        let installed = rng.chance(0.3);
        d.accounts.push(AccountRow {
            line: n as u64 + 1,
            id: format!("acc-{n:03}"),
            name,
            domain: Patch::Set(format!("{slug}.example")),
            industry: Patch::Set(industry.to_owned()),
            employee_count: Patch::Set(employees),
            annual_revenue: Patch::Set(employees * rng.range(120, 260) * 1_000 * 100),
            country: Patch::Set(market.country.to_owned()),
            customer_status: Some(if installed {
                LifecycleStatus::ExistingCustomer
            } else {
                LifecycleStatus::Lead
            }),
        });
        accounts.push(Account {
            market: m,
            employees,
            industry,
            domain: format!("{slug}.example"),
            installed,
        });
    }

    // Contacts: eight per account on average, created over 2024 and 2025.
    struct Lead {
        account: usize,
        function: usize,
        created: i64,
        touches: usize,
    }
    let mut leads: Vec<Lead> = Vec::new();
    let function_weights: Vec<u32> = FUNCTIONS.iter().map(|f| f.1).collect();
    for (a, acc) in accounts.iter().enumerate() {
        for _ in 0..rng.range(4, 13) {
            let early = if acc.installed { 0 } else { 30 * DAY };
            leads.push(Lead {
                account: a,
                function: rng.weighted(&function_weights),
                created: rng.range(first_day + early, end - 20 * DAY),
                touches: 0,
            });
        }
    }
    leads.sort_by_key(|l| l.created);
    let mut account_leads: Vec<Vec<usize>> = vec![Vec::new(); accounts.len()];
    for (i, l) in leads.iter().enumerate() {
        account_leads[l.account].push(i);
    }

    // Deals: new business first, then cross-sell and upsell at the installed base and new customers.
    let mut opened: Vec<Option<i64>> = vec![None; leads.len()];
    let mut won_at: Vec<Option<i64>> = vec![None; leads.len()];
    let mut lost_at: Vec<Option<i64>> = vec![None; leads.len()];
    let mut customers: Vec<bool> = accounts.iter().map(|a| a.installed).collect();
    let mut n_opp = 0;
    let roles = |function: usize| match FUNCTIONS[function].0 {
        "Decision maker" => "Decision maker",
        "Economic buyer" => "Economic buyer",
        "Influencer" => "Champion",
        _ => "Technical evaluator",
    };
    let mut deal = |d: &mut Dataset, rng: &mut Rng, a: usize, after: i64, (product, lo, hi): (&str, i64, i64)| -> bool {
        // The account's contacts in creation order; a deal opens once two of them are known.
        let known: Vec<usize> = account_leads[a]
            .iter()
            .copied()
            .filter(|&l| leads[l].created < end - 45 * DAY)
            .collect();
        if known.len() < 2 {
            return false;
        }
        let created = (after.max(leads[known[1]].created) + rng.range(10 * DAY, 120 * DAY)).min(end - 15 * DAY);
        // Its buying center: contacts marketing knew for a week at least when sales opened it, so
        // that each went through MQL and SQL before the deal (a later contact joined no deal).
        let members: Vec<usize> = known.into_iter().filter(|&l| leads[l].created <= created - 7 * DAY).collect();
        if members.len() < 2 {
            return false;
        }
        let closes = created + rng.range(45 * DAY, 300 * DAY);
        let status = match () {
            _ if closes >= end => OpportunityStatus::Open,
            _ if rng.chance(0.42) => OpportunityStatus::Won,
            _ => OpportunityStatus::Lost,
        };
        n_opp += 1;
        let id = format!("opp-{n_opp:03}");
        let country = MARKETS[accounts[a].market].country;
        let amount = rng.range(lo / 25_000, hi / 25_000 + 1) * 25_000 + rng.range(0, 4) * 1_250;
        d.opportunities.push(OpportunityRow {
            line: n_opp as u64 + 1,
            id: id.clone(),
            account_id: format!("acc-{:03}", a + 1),
            name: Some(format!("{product} – {}", d.accounts[a].name)),
            amount,
            currency: Some("EUR".into()),
            status,
            owner_id: Patch::Set(rep_of(country, a)),
            expected_close_date: Patch::Set(at(closes.min(end + 180 * DAY)).date_naive()),
            created_at: at(created),
            closed_at: (status != OpportunityStatus::Open).then(|| at(closes)),
        });
        let k = (rng.range(2, 5) as usize).min(members.len());
        let offset = rng.below(members.len() as u64) as usize;
        let mut primary_set = false;
        for j in 0..k {
            let l = members[(offset + j) % members.len()];
            let role = roles(leads[l].function);
            let primary = !primary_set && (role == "Champion" || role == "Decision maker" || j == k - 1);
            primary_set |= primary;
            d.contacts.push(ContactRow {
                line: d.contacts.len() as u64 + 2,
                opportunity_id: id.clone(),
                lead_id: format!("ld-{:04}", l + 1),
                role: role.to_owned(),
                is_primary: Some(primary),
            });
            let opened_at = created.max(leads[l].created);
            opened[l] = Some(opened[l].map_or(opened_at, |t| t.min(opened_at)));
            match status {
                OpportunityStatus::Won => won_at[l] = Some(won_at[l].map_or(closes, |t| t.min(closes))),
                OpportunityStatus::Lost => lost_at[l] = Some(lost_at[l].map_or(closes, |t| t.max(closes))),
                OpportunityStatus::Open => {}
            }
        }
        if status == OpportunityStatus::Won {
            customers[a] = true;
        }
        true
    };
    let mut order: Vec<usize> = (0..accounts.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut deals = 0;
    for &a in order.iter().filter(|&&a| !accounts[a].installed).cycle().take(400) {
        if deals == 105 {
            break;
        }
        let product = NEW_BUSINESS[rng.below(NEW_BUSINESS.len() as u64) as usize];
        deals += usize::from(deal(&mut d, &mut rng, a, first_day, product));
    }
    let won: HashSet<&str> = d
        .opportunities
        .iter()
        .filter(|o| o.status == OpportunityStatus::Won)
        .map(|o| o.account_id.as_str())
        .collect();
    let targets: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&a| accounts[a].installed || won.contains(format!("acc-{:03}", a + 1).as_str()))
        .collect();
    drop(won);
    for &a in targets.iter().cycle().take(400) {
        if deals == 150 {
            break;
        }
        let (product, after) = if rng.chance(0.5) {
            (CROSS_SELL, start_of(day(2024, 10, 1)))
        } else {
            (UPSELL, start_of(day(2025, 5, 1)))
        };
        deals += usize::from(deal(&mut d, &mut rng, a, after, product));
    }

    // Touchpoints: about ten per contact, from the campaigns that ran in the contact's market
    // around and after its creation; cross-sell and upsell reach customers only.
    let mut t = 0_u64;
    let campaign_weights: Vec<u32> = CAMPAIGNS.iter().map(|c| c.weight).collect();
    for (i, l) in leads.iter_mut().enumerate() {
        let country = MARKETS[accounts[l.account].market].country;
        let customer = customers[l.account];
        let engaged = opened[i].is_some();
        let n = rng.range(3, 16) + if engaged { 4 } else { 0 };
        for _ in 0..n {
            let c = &CAMPAIGNS[rng.weighted(&campaign_weights)];
            let from = start_of(day(c.start.0, c.start.1, c.start.2)).max(l.created - 14 * DAY);
            let to = c.end.map_or(end, |(y, m, dd)| start_of(day(y, m, dd)) + DAY).min(end - 1);
            let fits = (c.markets.is_empty() || c.markets.contains(&country))
                && (!matches!(c.kind, CampaignKind::CrossSell | CampaignKind::Upsell | CampaignKind::Loyalty) || customer)
                && from < to;
            t += 1;
            let (campaign, touch_type, occurred) = if fits {
                (Some(c.id.to_owned()), *rng.pick(types_of(c.channel)), rng.range(from, to))
            } else {
                (None, "PAGE_VIEW", rng.range(l.created, end))
            };
            l.touches += 1;
            d.touchpoints.push(TouchpointRow {
                line: t + 1,
                id: format!("tp-{t:05}"),
                lead_id: format!("ld-{:04}", i + 1),
                campaign_id: campaign,
                touch_type: touch_type.to_owned(),
                occurred_at: at(occurred),
            });
        }
    }

    // The contacts themselves, with their funnel stage and its history.
    let mut emails = HashSet::new();
    for (i, l) in leads.iter().enumerate() {
        let acc = &accounts[l.account];
        let market = &MARKETS[acc.market];
        let (first, last) = (*rng.pick(market.first), *rng.pick(market.stems));
        let stage = match (won_at[i], opened[i], lost_at[i]) {
            (Some(_), _, _) => "CUSTOMER",
            (None, Some(_), Some(_)) => "NURTURE",
            (None, Some(_), None) => "OPPORTUNITY",
            _ if rng.chance(0.04) => "DISQUALIFIED",
            _ if l.touches >= 14 => "SQL",
            _ if l.touches >= 9 => "MQL",
            _ if rng.chance(0.08) => "NURTURE",
            _ => "LEAD",
        };
        let until = opened[i].map(|o| (o.max(l.created), won_at[i].map(|w| w.max(o))));
        // 3 to 40 days between stages away from deals, shortened in proportion when the lead is
        // too recent for them, so that no two stages of a lead are entered at one instant.
        let steps = [rng.range(3 * DAY, 40 * DAY), rng.range(3 * DAY, 40 * DAY)];
        let taken = match stage {
            "MQL" | "DISQUALIFIED" => 1,
            "SQL" | "NURTURE" => 2,
            _ => 0,
        };
        let (room, total) = (end - 1 - l.created, steps[..taken].iter().sum::<i64>());
        let mut steps = steps.into_iter().map(|s| if total > room { s * room / total } else { s });
        let mut step = || steps.next().unwrap_or(DAY);
        let history = match lost_at[i].filter(|_| stage == "NURTURE") {
            // A lost deal sends its contacts back to nurturing a week after it closed.
            Some(closed) => {
                let mut path = stage_path("OPPORTUNITY", l.created, until, &mut step, end - 1);
                let last = path.last().map_or(l.created, |(_, t)| t.timestamp());
                path.push(("NURTURE".into(), at((closed + 7 * DAY).clamp(last, (end - 1).max(last)))));
                path
            }
            None => stage_path(stage, l.created, until, &mut step, end - 1),
        };
        let converted = history.iter().find(|(k, _)| k == "MQL").map(|(_, t)| *t);
        let local = |s: &str| s.to_lowercase().chars().filter(|c| c.is_ascii_alphabetic()).collect::<String>();
        let mut email = format!("{}.{}@{}", local(first), local(last), acc.domain);
        let mut n = 1;
        while !emails.insert(email.clone()) {
            n += 1;
            email = format!("{}.{}{n}@{}", local(first), local(last), acc.domain);
        }
        let (role, _) = FUNCTIONS[l.function];
        let owned = !matches!(stage, "LEAD" | "DISQUALIFIED");
        let has_phone = rng.chance(0.6);
        d.leads.push(LeadRow {
            line: i as u64 + 2,
            id: format!("ld-{:04}", i + 1),
            account_id: Patch::Set(format!("acc-{:03}", l.account + 1)),
            email: Patch::Set(email),
            first_name: Patch::Set(first.to_owned()),
            last_name: Patch::Set(last.to_owned()),
            job_title: Patch::Set(market.titles[l.function].to_owned()),
            decision_role: Patch::Set(role.to_owned()),
            industry: Patch::Set(acc.industry.to_owned()),
            company_size: Patch::Set(size_band(acc.employees).to_owned()),
            country: Patch::Set(market.country.to_owned()),
            phone: if has_phone {
                Patch::Set(format!(
                    "+{} {:09}",
                    phone_prefix(market.country),
                    rng.range(100_000_000, 999_999_999)
                ))
            } else {
                Patch::Keep
            },
            lifecycle_status: Some(match (acc.installed, stage) {
                (true, _) => LifecycleStatus::ExistingCustomer,
                (false, "CUSTOMER") => LifecycleStatus::NewCustomer,
                _ => LifecycleStatus::Lead,
            }),
            owner_id: if owned {
                Patch::Set(rep_of(market.country, l.account))
            } else {
                Patch::Keep
            },
            stage: history.last().map(|(k, _)| k.clone()),
            created_at: Some(at(l.created)),
            converted_at: converted.map_or(Patch::Keep, Patch::Set),
            history,
            ..contact_data(i as u64, market.country, has_phone)
        });
    }
    d
}

/// `brandt-vogt-maschinenbau` for "Brandt & Vogt Maschinenbau GmbH": legal forms dropped, ASCII.
/// A demo lead's social profiles, postal address and consents, from a hash of its number
/// (not from the story's random stream, whose every figure stays as it was).
fn contact_data(n: u64, country: &str, has_phone: bool) -> LeadRow {
    let mut h = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut next = |percent: u64| {
        h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h ^= h >> 31;
        h % 100 < percent
    };
    let (street, city, postal) = match country {
        "DE" => ("Industriestraße", "Stuttgart", "70565"),
        "FR" => ("Rue de l'Industrie", "Lyon", "69007"),
        "IT" => ("Via dell'Industria", "Bologna", "40138"),
        "ES" => ("Calle de la Industria", "Bilbao", "48013"),
        "AT" => ("Industriestraße", "Linz", "4030"),
        _ => ("Industriestrasse", "Winterthur", "8404"),
    };
    let linkedin = next(55);
    let twitter = next(15);
    let facebook = next(8);
    let postal_data = next(70);
    let set = |on: bool, v: String| if on { Patch::Set(v) } else { Patch::Keep };
    let mut consents = Vec::new();
    for (channel, have, percent) in [
        ("EMAIL", true, 80),
        ("PHONE", has_phone, 50),
        ("LINKEDIN", linkedin, 60),
        ("TWITTER", twitter, 40),
        ("FACEBOOK", facebook, 30),
        ("POSTAL", postal_data, 65),
    ] {
        if have && next(percent) {
            consents.push(channel.to_owned());
        }
    }
    LeadRow {
        linkedin_url: set(linkedin, format!("https://www.linkedin.com/in/demo-lead-{n}")),
        twitter_handle: set(twitter, format!("@demolead{n}")),
        facebook_url: set(facebook, format!("https://www.facebook.com/demolead{n}")),
        street: set(postal_data, format!("{street} {}", n % 120 + 1)),
        postal_code: set(postal_data, postal.to_owned()),
        city: set(postal_data, city.to_owned()),
        consents: Patch::Set(consents),
        ..LeadRow::default()
    }
}

fn domain_slug(name: &str) -> String {
    const LEGAL: &[&str] = &["gmbh", "ag", "kg", "co.", "sas", "sa", "s.a.", "s.p.a.", "s.r.l.", "s.l.", "&"];
    let words: Vec<String> = name
        .split_whitespace()
        .filter(|w| !LEGAL.contains(&w.to_lowercase().as_str()))
        .map(|w| {
            w.to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    'a'..='z' | '0'..='9' => Some(c),
                    'ä' | 'á' | 'à' => Some('a'),
                    'ö' | 'ó' | 'ò' => Some('o'),
                    'ü' | 'ú' | 'ù' => Some('u'),
                    'é' | 'è' | 'ê' => Some('e'),
                    'í' | 'ì' => Some('i'),
                    'ñ' => Some('n'),
                    'ç' => Some('c'),
                    _ => None,
                })
                .collect()
        })
        .filter(|w: &String| !w.is_empty())
        .collect();
    words.join("-")
}

fn phone_prefix(country: &str) -> &'static str {
    match country {
        "DE" => "49",
        "FR" => "33",
        "IT" => "39",
        "ES" => "34",
        "AT" => "43",
        _ => "41",
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::Statement;

    use super::*;

    /// The demo (and the import under it) can run in a spawned task: its future is `Send`.
    #[allow(dead_code)]
    fn demo_future_is_send(db: &'static Db) {
        fn assert_send<T: Send>(_: T) {}
        assert_send(load_beside(db, NaiveDate::MIN));
    }

    async fn count(db: &Db, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let row = db
            .conn
            .query_one_raw(Statement::from_string(db.backend(), sql))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index::<i64>(0).unwrap()
    }

    #[test]
    fn domains() {
        assert_eq!(domain_slug("Brandt & Vögt Maschinenbau GmbH & Co. KG"), "brandt-vogt-maschinenbau");
        assert_eq!(domain_slug("Officine Ricci S.r.l."), "officine-ricci");
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_story_is_the_same_every_time() {
        let (a, b) = (story(day("2026-12-07")), story(day("2026-12-07")));
        assert_eq!(a.leads.len(), b.leads.len());
        assert_eq!(a.touchpoints.len(), b.touchpoints.len());
        let sum = |d: &Dataset| d.opportunities.iter().map(|o| o.amount).sum::<i64>();
        assert_eq!(sum(&a), sum(&b));
        assert!((1_700..2_300).contains(&a.leads.len()), "{} leads", a.leads.len());
        assert!(
            (17_000..24_000).contains(&a.touchpoints.len()),
            "{} touchpoints",
            a.touchpoints.len()
        );
        assert_eq!(a.opportunities.len(), 150);
    }

    /// Another day moves every time by the days between, and nothing else; the story ends
    /// before the day it is loaded on, and campaigns are named after their years.
    #[test]
    fn another_day_moves_the_story_by_whole_days() {
        let (a, b) = (story(day("2026-12-07")), story(day("2027-03-01")));
        let by = chrono::TimeDelta::days(84);
        let now = now_of(day("2026-12-07"));
        assert_eq!(a.touchpoints.len(), b.touchpoints.len());
        for (x, y) in a.touchpoints.iter().zip(&b.touchpoints) {
            assert_eq!((x.occurred_at + by, &x.lead_id), (y.occurred_at, &y.lead_id));
            assert!(x.occurred_at < now, "{} is after the demo's now", x.occurred_at);
        }
        for (x, y) in a.leads.iter().zip(&b.leads) {
            let moved: Vec<_> = x.history.iter().map(|(k, t)| (k.clone(), *t + by)).collect();
            assert_eq!(moved, y.history);
            assert!(x.history.iter().all(|(_, t)| *t < now));
        }
        for (x, y) in a.opportunities.iter().zip(&b.opportunities) {
            assert_eq!(
                (x.created_at + by, x.closed_at.map(|t| t + by), x.amount),
                (y.created_at, y.closed_at, y.amount)
            );
        }
        let names: Vec<&str> = a.campaigns.iter().map(|c| c.name.as_str()).collect();
        assert!(
            names.contains(&"Hannover Messe 2025") && names.contains(&"Hannover Messe 2026"),
            "{names:?}"
        );
        assert!(names.iter().all(|n| !n.contains('{')), "{names:?}");
        let unique: HashSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
    }

    /// Leads in a deal went through MQL and SQL before it, and no lead enters two stages at one
    /// instant (what made the demo's stage durations zero).
    #[test]
    fn stages_take_time() {
        let d = story(day("2026-12-07"));
        for l in &d.leads {
            for w in l.history.windows(2) {
                assert!(w[1].1 > w[0].1, "{}: {:?}", l.id, l.history);
            }
        }
    }

    #[tokio::test]
    async fn loads_once_into_an_empty_database() {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        db.migrate().await.unwrap();
        let key = load(&db, day("2026-12-07"))
            .await
            .unwrap()
            .expect("an empty database gets the demo");
        assert!(key.starts_with("clk_"));
        assert_eq!(count(&db, "workspaces").await, 1);
        assert_eq!(count(&db, "personas").await, 3);
        assert_eq!(count(&db, "persona_criteria").await, 10);
        assert_eq!(count(&db, "users").await, 10);
        assert_eq!(count(&db, "opportunities").await, 150);
        assert!(count(&db, "leads").await >= 1_700);
        assert!(count(&db, "touchpoints").await >= 17_000);
        assert!(count(&db, "campaign_costs").await > 40);
        assert_eq!(count(&db, "api_keys").await, 1);
        assert_eq!(count(&db, "scoring_models").await, 1);
        assert_eq!(count(&db, "lead_scores").await, count(&db, "leads").await);
        assert!(
            load(&db, day("2026-12-07")).await.unwrap().is_none(),
            "the second time nothing is loaded"
        );
        assert_eq!(count(&db, "workspaces").await, 1);
        assert_eq!(count(&db, "api_keys").await, 1);
    }
}
