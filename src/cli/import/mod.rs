//! CSV import (docs/import.md): a directory of CSV files into one workspace, checked first and
//! written in one transaction, all or nothing. Rows are matched on the source system's IDs, so
//! running the same import again changes nothing.
//!
//! The files are read into a [`Dataset`] of typed rows; [`apply`] checks what needs the database
//! (vocabularies, references, uniqueness) and writes through `store::bulk`. Synthetic data
//! (`seed`) and the demo build a `Dataset` in memory and are written by the same code.
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, SubsecRound, Utc};
use entity::{account, campaign, campaign_cost, lead, opportunity, opportunity_contact, user, workspace};
use rust_decimal::Decimal;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, Statement, Value};

use crate::BoxError;
use crate::cli::progress::Progress;
use crate::db::Db;
use crate::domain::email::Email;
use crate::domain::money;
use crate::domain::search::lead_search_text;
use crate::domain::vocab::{
    CampaignKind, CampaignStatus, CostCategory, LifecycleStatus, OpportunityStatus, VOCAB_CHANNEL, VOCAB_COST_CATEGORY,
    VOCAB_TOUCHPOINT_TYPE, normalize_code,
};
use crate::service::Patch;
use crate::service::account::{COUNTRY_HINT, country_code};
use crate::store::bulk::{self, Inserter};
use crate::store::{self, Scoped};

mod changes;
mod read;

/// A rejected import lists at most this many problems by default (and counts the rest).
pub const MAX_PROBLEMS: usize = 100;
/// A cell may hold at most this many bytes by default.
pub const MAX_CELL_BYTES: usize = 64 * 1024;
/// Who stage-history rows written by an import name as their actor.
pub const ACTOR: &str = "import";
/// The note of the cost line that stands for a campaign's `cost` column.
pub const COST_NOTE: &str = "cost from campaigns.csv";
/// Currency of a workspace the import creates (as `service::workspace::create`).
const NEW_WORKSPACE_CURRENCY: &str = "EUR";

pub const USERS: &str = "users.csv";
pub const ACCOUNTS: &str = "accounts.csv";
pub const CAMPAIGNS: &str = "campaigns.csv";
pub const COSTS: &str = "campaign_costs.csv";
pub const LEADS: &str = "leads.csv";
pub const TOUCHPOINTS: &str = "touchpoints.csv";
pub const OPPORTUNITIES: &str = "opportunities.csv";
pub const CONTACTS: &str = "opportunity_contacts.csv";

// ---------------------------------------------------------------------------------------------
// Rows

/// Everything one import writes. A `Patch` field is `Keep` when its column is absent (existing
/// rows keep their value), `Clear` when the cell is empty, `Set` otherwise.
#[derive(Debug, Default)]
pub struct Dataset {
    pub users: Vec<UserRow>,
    pub accounts: Vec<AccountRow>,
    pub campaigns: Vec<CampaignRow>,
    pub costs: Vec<CostRow>,
    pub leads: Vec<LeadRow>,
    pub touchpoints: Vec<TouchpointRow>,
    pub opportunities: Vec<OpportunityRow>,
    pub contacts: Vec<ContactRow>,
}

#[derive(Debug, Clone, Default)]
pub struct UserRow {
    pub line: u64,
    pub id: String,
    pub name: String,
    pub email: Patch<String>,
    pub team: Patch<String>,
    pub active: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct AccountRow {
    pub line: u64,
    pub id: String,
    pub name: String,
    pub domain: Patch<String>,
    pub industry: Patch<String>,
    pub employee_count: Patch<i64>,
    /// Minor units.
    pub annual_revenue: Patch<i64>,
    pub country: Patch<String>,
    pub customer_status: Option<LifecycleStatus>,
}

#[derive(Debug, Clone, Default)]
pub struct CampaignRow {
    pub line: u64,
    pub id: String,
    pub name: String,
    /// Normalized code; checked against the workspace's channels.
    pub channel: String,
    pub kind: Option<CampaignKind>,
    pub status: Option<CampaignStatus>,
    pub tracking_code: Patch<String>,
    pub start_date: Patch<NaiveDate>,
    pub end_date: Patch<NaiveDate>,
    pub budget: Patch<i64>,
    pub expected_revenue: Patch<i64>,
    pub expected_leads: Patch<i64>,
    /// Total cost: one cost line (category OTHER, dated `start_date`, note [`COST_NOTE`]).
    pub cost: Patch<i64>,
}

#[derive(Debug, Clone)]
pub struct CostRow {
    pub line: u64,
    pub campaign_id: String,
    pub date: NaiveDate,
    /// A code of the workspace's cost-category vocabulary (OTHER when the cell is empty).
    pub category: String,
    pub amount: i64,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct LeadRow {
    pub line: u64,
    pub id: String,
    pub account_id: Patch<String>,
    pub email: Patch<String>,
    pub first_name: Patch<String>,
    pub last_name: Patch<String>,
    pub job_title: Patch<String>,
    pub decision_role: Patch<String>,
    pub industry: Patch<String>,
    pub company_size: Patch<String>,
    pub country: Patch<String>,
    pub phone: Patch<String>,
    pub linkedin_url: Patch<String>,
    pub twitter_handle: Patch<String>,
    pub facebook_url: Patch<String>,
    pub street: Patch<String>,
    pub postal_code: Patch<String>,
    pub city: Patch<String>,
    /// The channels the lead consented to: the consent map becomes exactly these.
    pub consents: Patch<Vec<String>>,
    pub lifecycle_status: Option<LifecycleStatus>,
    pub owner_id: Patch<String>,
    /// Funnel stage key.
    pub stage: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    /// When the lead became an MQL.
    pub converted_at: Patch<DateTime<Utc>>,
    /// Synthetic data only: the stage path of a new lead (stage key, entered at), ending in
    /// `stage`; when empty it is derived from `stage`, `created_at` and `converted_at`.
    pub history: Vec<(String, DateTime<Utc>)>,
}

#[derive(Debug, Clone, Default)]
pub struct TouchpointRow {
    pub line: u64,
    pub id: String,
    pub lead_id: String,
    pub campaign_id: Option<String>,
    /// Normalized code; checked against the workspace's touchpoint types.
    pub touch_type: String,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct OpportunityRow {
    pub line: u64,
    pub id: String,
    pub account_id: String,
    pub name: Option<String>,
    pub amount: i64,
    pub currency: Option<String>,
    pub status: OpportunityStatus,
    pub owner_id: Patch<String>,
    pub expected_close_date: Patch<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default)]
pub struct ContactRow {
    pub line: u64,
    pub opportunity_id: String,
    pub lead_id: String,
    pub role: String,
    pub is_primary: Option<bool>,
}

// ---------------------------------------------------------------------------------------------
// Problems

/// One thing wrong with the input, located by file, line (1 is the header) and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: &'static str,
    pub line: u64,
    pub column: &'static str,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (0, _) => write!(f, "{}: {}", self.file, self.message),
            (l, "") => write!(f, "{} line {l}: {}", self.file, self.message),
            (l, c) => write!(f, "{} line {l}, column {c}: {}", self.file, self.message),
        }
    }
}

/// The problems found so far: every one counted, the first `cap` (in file and line order) kept.
#[derive(Debug)]
struct Problems {
    list: Vec<Problem>,
    total: u64,
    cap: usize,
}

impl Default for Problems {
    fn default() -> Self {
        Problems::new(MAX_PROBLEMS)
    }
}

impl Problems {
    fn new(cap: usize) -> Self {
        Problems {
            list: Vec::new(),
            total: 0,
            cap: cap.max(1),
        }
    }

    fn add(&mut self, file: &'static str, line: u64, column: &'static str, message: impl Into<String>) {
        self.total += 1;
        self.list.push(Problem {
            file,
            line,
            column,
            message: message.into(),
        });
        // Bounded memory however many rows are wrong: trimmed now and then, not at every add.
        if self.list.len() >= 2 * self.cap {
            self.trim();
        }
    }

    fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Keeps the first `cap` problems in file and line order (a stable sort: columns stay in
    /// the order they were checked).
    fn trim(&mut self) {
        self.list.sort_by_key(|x| (FILE_ORDER.iter().position(|f| *f == x.file), x.line));
        self.list.truncate(self.cap);
    }

    /// Adds the problems of another pass.
    fn merge(&mut self, mut other: Problems) {
        self.total += other.total;
        self.list.append(&mut other.list);
        self.trim();
    }
}

impl From<Problems> for Rejected {
    fn from(mut p: Problems) -> Self {
        p.trim();
        Rejected {
            problems: p.list,
            total: p.total,
        }
    }
}

/// The import was refused; nothing was written.
#[derive(Debug)]
pub struct Rejected {
    /// The first problems, in file and line order.
    pub problems: Vec<Problem>,
    /// How many problems were found, listed or not.
    pub total: u64,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.total;
        write!(
            f,
            "import rejected, nothing was written: {n} problem{}",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        let more = n.saturating_sub(self.problems.len() as u64);
        if more > 0 {
            write!(f, "\n  and {more} more")?;
        }
        Ok(())
    }
}

impl std::error::Error for Rejected {}

// ---------------------------------------------------------------------------------------------
// Reading CSV

/// A file of the import: its name, the columns it knows and those it cannot do without.
struct FileSpec {
    name: &'static str,
    columns: &'static [&'static str],
    required: &'static [&'static str],
}

const USER_FILE: FileSpec = FileSpec {
    name: USERS,
    columns: &["id", "name", "email", "team", "active"],
    required: &["id", "name"],
};
const ACCOUNT_FILE: FileSpec = FileSpec {
    name: ACCOUNTS,
    columns: &[
        "id",
        "name",
        "domain",
        "industry",
        "employee_count",
        "annual_revenue",
        "country",
        "customer_status",
    ],
    required: &["id", "name"],
};
const CAMPAIGN_FILE: FileSpec = FileSpec {
    name: CAMPAIGNS,
    columns: &[
        "id",
        "name",
        "channel",
        "kind",
        "status",
        "tracking_code",
        "start_date",
        "end_date",
        "budget",
        "expected_revenue",
        "expected_leads",
        "cost",
    ],
    required: &["id", "name", "channel"],
};
const COST_FILE: FileSpec = FileSpec {
    name: COSTS,
    columns: &["campaign_id", "date", "category", "amount", "note"],
    required: &["campaign_id", "date", "amount"],
};
const LEAD_FILE: FileSpec = FileSpec {
    name: LEADS,
    columns: &[
        "id",
        "account_id",
        "email",
        "first_name",
        "last_name",
        "job_title",
        "decision_role",
        "industry",
        "company_size",
        "country",
        "phone",
        "linkedin_url",
        "twitter_handle",
        "facebook_url",
        "street",
        "postal_code",
        "city",
        "consents",
        "lifecycle_status",
        "owner_id",
        "stage",
        "created_at",
        "converted_at",
    ],
    required: &["id"],
};
const TOUCHPOINT_FILE: FileSpec = FileSpec {
    name: TOUCHPOINTS,
    columns: &["id", "lead_id", "campaign_id", "type", "occurred_at"],
    required: &["id", "lead_id", "type", "occurred_at"],
};
const OPPORTUNITY_FILE: FileSpec = FileSpec {
    name: OPPORTUNITIES,
    columns: &[
        "id",
        "account_id",
        "name",
        "amount",
        "currency",
        "status",
        "owner_id",
        "expected_close_date",
        "created_at",
        "closed_at",
    ],
    required: &["id", "account_id", "amount", "status", "created_at"],
};
const CONTACT_FILE: FileSpec = FileSpec {
    name: CONTACTS,
    columns: &["opportunity_id", "lead_id", "role", "is_primary"],
    required: &["opportunity_id", "lead_id", "role"],
};
/// The order files are read, checked and reported in.
const FILE_ORDER: &[&str] = &[USERS, ACCOUNTS, CAMPAIGNS, COSTS, LEADS, TOUCHPOINTS, OPPORTUNITIES, CONTACTS];

/// How an import reads and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// A rejection lists this many problems (and counts the rest).
    pub max_problems: usize,
    /// A cell may hold at most this many bytes.
    pub max_cell_bytes: usize,
    /// Unknown channels, touchpoint types and cost categories are added to the workspace's
    /// vocabularies instead of being problems.
    pub add_vocabulary: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_problems: MAX_PROBLEMS,
            max_cell_bytes: MAX_CELL_BYTES,
            add_vocabulary: false,
        }
    }
}

/// IDs of rows left out for format problems, with their lines, per file: other rows may still
/// name them (reported as unknown they would mislead), and they count for uniqueness.
#[derive(Debug, Default)]
struct LeftOut(HashMap<&'static str, Vec<(String, u64)>>);

impl LeftOut {
    fn rows(&self, file: &str) -> &[(String, u64)] {
        self.0.get(file).map_or(&[], Vec::as_slice)
    }

    fn ids(&self, file: &str) -> impl Iterator<Item = &str> {
        self.rows(file).iter().map(|(id, _)| id.as_str())
    }

    fn merge(&mut self, other: LeftOut) {
        for (file, rows) in other.0 {
            self.0.entry(file).or_default().extend(rows);
        }
    }
}

/// What reading files yields besides the rows: problems and the rows left out.
#[derive(Debug, Default)]
struct Read {
    problems: Problems,
    left_out: LeftOut,
    max_cell: usize,
}

impl Read {
    fn new(o: &Options) -> Self {
        Read {
            problems: Problems::new(o.max_problems),
            left_out: LeftOut::default(),
            max_cell: o.max_cell_bytes,
        }
    }
}

/// Reads every file of `dir` but touchpoints.csv; rows with format problems are left out.
fn read_rest(dir: &Path, o: Options) -> Result<(Dataset, Read), BoxError> {
    let mut r = Read::new(&o);
    let data = Dataset {
        users: read_file(dir, &USER_FILE, &mut r, user_row)?,
        accounts: read_file(dir, &ACCOUNT_FILE, &mut r, account_row)?,
        campaigns: read_file(dir, &CAMPAIGN_FILE, &mut r, campaign_row)?,
        costs: read_file(dir, &COST_FILE, &mut r, cost_row)?,
        leads: read_file(dir, &LEAD_FILE, &mut r, lead_row)?,
        touchpoints: Vec::new(),
        opportunities: read_file(dir, &OPPORTUNITY_FILE, &mut r, opportunity_row)?,
        contacts: read_file(dir, &CONTACT_FILE, &mut r, contact_row)?,
    };
    Ok((data, r))
}

/// Reads touchpoints.csv, by far the largest file.
fn read_touchpoints(dir: &Path, o: Options) -> Result<(Vec<TouchpointRow>, Read), BoxError> {
    let mut r = Read::new(&o);
    let rows = read_file(dir, &TOUCHPOINT_FILE, &mut r, touchpoint_row)?;
    Ok((rows, r))
}

/// Reads one file record by record (streaming); every problem is counted, the rows with none
/// are returned.
fn read_file<T>(dir: &Path, spec: &FileSpec, r: &mut Read, parse: fn(&mut Cells<'_>) -> Option<T>) -> Result<Vec<T>, BoxError> {
    let (file, known, required) = (spec.name, spec.columns, spec.required);
    let path = dir.join(file);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let cannot = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let input = std::fs::File::open(&path).map_err(cannot)?;
    let mut reader = read::Reader::new(std::io::BufReader::with_capacity(1 << 16, input), r.max_cell);
    let problems = &mut r.problems;
    let headers = match reader.next_record().map_err(cannot)? {
        Some(h) => {
            if let Some((line, _, message)) = &h.problem {
                problems.add(file, *line, "", format!("unreadable header: {message}"));
                return Ok(Vec::new());
            }
            h.fields
        }
        None => Vec::new(),
    };
    let mut index: HashMap<&'static str, usize> = HashMap::new();
    // The column name of each field, for problems found while reading.
    let mut names: Vec<&'static str> = vec![""; headers.len()];
    for (i, h) in headers.iter().enumerate() {
        let name = h.trim_start_matches('\u{feff}').trim().to_ascii_lowercase();
        if let Some(col) = known.iter().find(|k| **k == name) {
            names[i] = col;
            if index.insert(col, i).is_some() {
                problems.add(file, 1, col, "the column appears twice");
            }
        }
    }
    let mut fine = true;
    for col in required {
        if !index.contains_key(col) {
            problems.add(file, 1, col, "required column is missing");
            fine = false;
        }
    }
    if !fine {
        return Ok(Vec::new());
    }
    let width = headers.len();
    let id_at = index.get("id").copied();
    let mut out = Vec::new();
    let mut left_out = Vec::new();
    while let Some(rec) = reader.next_record().map_err(cannot)? {
        let line = rec.line;
        let fine = if let Some((at, field, message)) = rec.problem {
            problems.add(file, at, names.get(field).copied().unwrap_or(""), message);
            false
        } else if rec.fields.len() != width {
            problems.add(file, line, "", format!("has {} fields, the header has {width}", rec.fields.len()));
            false
        } else {
            let mut cells = Cells {
                file,
                line,
                rec: &rec.fields,
                index: &index,
                problems,
                ok: true,
            };
            match parse(&mut cells) {
                Some(row) if cells.ok => {
                    out.push(row);
                    true
                }
                _ => false,
            }
        };
        if !fine && let Some(id) = id_at.and_then(|i| rec.fields.get(i)).map(|s| s.trim()).filter(|s| !s.is_empty()) {
            left_out.push((id.to_owned(), line));
        }
    }
    if !left_out.is_empty() {
        r.left_out.0.insert(file, left_out);
    }
    Ok(out)
}

/// The cells of one record, by column name.
struct Cells<'a> {
    file: &'static str,
    line: u64,
    rec: &'a [String],
    index: &'a HashMap<&'static str, usize>,
    problems: &'a mut Problems,
    ok: bool,
}

type Parser<T> = fn(&str) -> Result<T, String>;

impl<'a> Cells<'a> {
    /// `None` when the column is absent; the trimmed text otherwise.
    fn cell(&self, col: &'static str) -> Option<&'a str> {
        let rec: &'a [String] = self.rec;
        self.index.get(col).and_then(|&i| rec.get(i)).map(|s| s.trim())
    }

    fn bad(&mut self, col: &'static str, message: impl Into<String>) {
        self.ok = false;
        self.problems.add(self.file, self.line, col, message);
    }

    fn text(&self, col: &'static str) -> Patch<String> {
        match self.cell(col) {
            None => Patch::Keep,
            Some("") => Patch::Clear,
            Some(s) => Patch::Set(s.to_owned()),
        }
    }

    fn required_text(&mut self, col: &'static str) -> String {
        match self.cell(col) {
            Some(s) if !s.is_empty() => s.to_owned(),
            _ => {
                self.bad(col, "is required");
                String::new()
            }
        }
    }

    fn optional_text(&self, col: &'static str) -> Option<String> {
        self.cell(col).filter(|s| !s.is_empty()).map(str::to_owned)
    }

    fn parsed<T>(&mut self, col: &'static str, parse: Parser<T>) -> Patch<T> {
        match self.cell(col) {
            None => Patch::Keep,
            Some("") => Patch::Clear,
            Some(s) => match parse(s) {
                Ok(v) => Patch::Set(v),
                Err(m) => {
                    self.bad(col, m);
                    Patch::Keep
                }
            },
        }
    }

    fn optional<T>(&mut self, col: &'static str, parse: Parser<T>) -> Option<T> {
        match self.parsed(col, parse) {
            Patch::Set(v) => Some(v),
            _ => None,
        }
    }

    fn required<T>(&mut self, col: &'static str, parse: Parser<T>) -> Option<T> {
        match self.cell(col) {
            Some(s) if !s.is_empty() => match parse(s) {
                Ok(v) => Some(v),
                Err(m) => {
                    self.bad(col, m);
                    None
                }
            },
            _ => {
                self.bad(col, "is required");
                None
            }
        }
    }
}

fn user_row(c: &mut Cells<'_>) -> Option<UserRow> {
    Some(UserRow {
        line: c.line,
        id: c.required_text("id"),
        name: c.required_text("name"),
        email: c.parsed("email", parse_email),
        team: c.text("team"),
        active: c.optional("active", parse_bool),
    })
}

fn account_row(c: &mut Cells<'_>) -> Option<AccountRow> {
    Some(AccountRow {
        line: c.line,
        id: c.required_text("id"),
        name: c.required_text("name"),
        domain: c.text("domain").map(|d| d.to_lowercase()),
        industry: c.text("industry"),
        employee_count: c.parsed("employee_count", parse_count),
        annual_revenue: c.parsed("annual_revenue", parse_amount),
        country: c.parsed("country", parse_country),
        customer_status: c.optional("customer_status", |s| parse_enum(s, LifecycleStatus::parse, LifecycleStatus::ALL)),
    })
}

fn campaign_row(c: &mut Cells<'_>) -> Option<CampaignRow> {
    Some(CampaignRow {
        line: c.line,
        id: c.required_text("id"),
        name: c.required_text("name"),
        channel: c.required("channel", parse_code).unwrap_or_default(),
        kind: c.optional("kind", |s| parse_enum(s, CampaignKind::parse, CampaignKind::ALL)),
        status: c.optional("status", |s| parse_enum(s, CampaignStatus::parse, CampaignStatus::ALL)),
        tracking_code: c.text("tracking_code"),
        start_date: c.parsed("start_date", parse_date),
        end_date: c.parsed("end_date", parse_date),
        budget: c.parsed("budget", parse_amount),
        expected_revenue: c.parsed("expected_revenue", parse_amount),
        expected_leads: c.parsed("expected_leads", parse_count),
        cost: c.parsed("cost", parse_amount),
    })
}

fn cost_row(c: &mut Cells<'_>) -> Option<CostRow> {
    let campaign_id = c.required_text("campaign_id");
    let date = c.required("date", parse_date);
    let amount = c.required("amount", parse_signed_amount);
    let category = c
        .optional("category", parse_code)
        .unwrap_or_else(|| CostCategory::Other.as_str().to_owned());
    Some(CostRow {
        line: c.line,
        campaign_id,
        date: date?,
        category,
        amount: amount?,
        note: c.optional_text("note"),
    })
}

fn lead_row(c: &mut Cells<'_>) -> Option<LeadRow> {
    Some(LeadRow {
        line: c.line,
        id: c.required_text("id"),
        account_id: c.text("account_id"),
        email: c.parsed("email", parse_email),
        first_name: c.text("first_name"),
        last_name: c.text("last_name"),
        job_title: c.text("job_title"),
        decision_role: c.text("decision_role"),
        industry: c.text("industry"),
        company_size: c.text("company_size"),
        country: c.parsed("country", parse_country),
        phone: c.text("phone"),
        linkedin_url: c.text("linkedin_url"),
        twitter_handle: c.text("twitter_handle"),
        facebook_url: c.text("facebook_url"),
        street: c.text("street"),
        postal_code: c.text("postal_code"),
        city: c.text("city"),
        consents: c.parsed("consents", parse_codes),
        lifecycle_status: c.optional("lifecycle_status", |s| parse_enum(s, LifecycleStatus::parse, LifecycleStatus::ALL)),
        owner_id: c.text("owner_id"),
        stage: c.optional("stage", parse_code),
        created_at: c.optional("created_at", parse_timestamp),
        converted_at: c.parsed("converted_at", parse_timestamp),
        history: Vec::new(),
    })
}

fn touchpoint_row(c: &mut Cells<'_>) -> Option<TouchpointRow> {
    Some(TouchpointRow {
        line: c.line,
        id: c.required_text("id"),
        lead_id: c.required_text("lead_id"),
        campaign_id: c.optional_text("campaign_id"),
        touch_type: c.required("type", parse_code).unwrap_or_default(),
        occurred_at: c.required("occurred_at", parse_timestamp).unwrap_or_default(),
    })
}

fn opportunity_row(c: &mut Cells<'_>) -> Option<OpportunityRow> {
    let id = c.required_text("id");
    let account_id = c.required_text("account_id");
    let amount = c.required("amount", parse_amount);
    let status = c.required("status", |s| parse_enum(s, OpportunityStatus::parse, OpportunityStatus::ALL));
    let created_at = c.required("created_at", parse_timestamp);
    let closed_at = c.optional("closed_at", parse_timestamp);
    Some(OpportunityRow {
        line: c.line,
        id,
        account_id,
        name: c.optional_text("name"),
        amount: amount?,
        currency: c.optional("currency", |s| {
            money::parse_currency(s).ok_or_else(|| format!("{s:?} is not a three-letter ISO 4217 currency code"))
        }),
        status: status?,
        owner_id: c.text("owner_id"),
        expected_close_date: c.parsed("expected_close_date", parse_date),
        created_at: created_at?,
        closed_at,
    })
}

fn contact_row(c: &mut Cells<'_>) -> Option<ContactRow> {
    Some(ContactRow {
        line: c.line,
        opportunity_id: c.required_text("opportunity_id"),
        lead_id: c.required_text("lead_id"),
        role: c.required_text("role"),
        is_primary: c.optional("is_primary", parse_bool),
    })
}

// ---------------------------------------------------------------------------------------------
// Cell formats

/// RFC 3339, or `YYYY-MM-DD HH:MM:SS[.fff]` in UTC.
pub fn parse_timestamp(s: &str) -> Result<DateTime<Utc>, String> {
    let b = s.as_bytes();
    // The common case without chrono's format machinery: a million of these take a while.
    if b.len() == 19 && b[4] == b'-' && b[7] == b'-' && (b[10] == b' ' || b[10] == b'T') && b[13] == b':' && b[16] == b':' {
        let num = |r: std::ops::Range<usize>| {
            b[r].iter()
                .try_fold(0_u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
        };
        if let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(sec)) =
            (num(0..4), num(5..7), num(8..10), num(11..13), num(14..16), num(17..19))
            && let Some(t) = NaiveDate::from_ymd_opt(y as i32, mo, d).and_then(|d| d.and_hms_opt(h, mi, sec))
        {
            return Ok(t.and_utc());
        }
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Ok(t.and_utc());
        }
    }
    Err(format!("{s:?} is not a timestamp (RFC 3339 or YYYY-MM-DD HH:MM:SS)"))
}

pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD)"))
}

fn decimal(s: &str) -> Result<Decimal, String> {
    let ok = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+');
    ok.then(|| Decimal::from_str(s).ok())
        .flatten()
        .ok_or_else(|| format!("{s:?} is not an amount (digits with at most 2 decimals, e.g. 1234.50)"))
}

/// A non-negative amount in minor units.
pub fn parse_amount(s: &str) -> Result<i64, String> {
    money::to_minor_non_negative(decimal(s)?).map_err(|e| format!("{s:?} {e}"))
}

/// An amount that may be negative (a correction), in minor units.
pub fn parse_signed_amount(s: &str) -> Result<i64, String> {
    money::to_minor(decimal(s)?).map_err(|e| format!("{s:?} {e}"))
}

fn parse_count(s: &str) -> Result<i64, String> {
    s.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| format!("{s:?} is not a whole number of at least 0"))
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" => Ok(true),
        "false" | "f" | "no" | "n" | "0" => Ok(false),
        _ => Err(format!("{s:?} is not true or false")),
    }
}

fn parse_country(s: &str) -> Result<String, String> {
    country_code(s).ok_or_else(|| format!("{s:?} {COUNTRY_HINT}"))
}

fn parse_email(s: &str) -> Result<String, String> {
    Email::parse(s).map(Email::into_inner).map_err(|m| format!("{s:?} {m}"))
}

fn parse_code(s: &str) -> Result<String, String> {
    normalize_code(s).ok_or_else(|| format!("{s:?} is not a code (letters, digits and _)"))
}

/// Channel codes separated by `;`, `|` or spaces.
fn parse_codes(s: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for part in s.split([';', '|', ' ']).filter(|p| !p.is_empty()) {
        let c = parse_code(part)?;
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
}

/// The consent map of a list of channel codes.
fn consent_map(codes: &[String]) -> serde_json::Value {
    serde_json::Value::Object(codes.iter().map(|c| (c.clone(), serde_json::Value::Bool(true))).collect())
}

fn parse_enum<T: fmt::Display>(s: &str, parse: fn(&str) -> Option<T>, all: &[T]) -> Result<T, String> {
    parse(s).ok_or_else(|| {
        let names: Vec<String> = all.iter().map(ToString::to_string).collect();
        format!("{s:?} is not one of {}", names.join(", "))
    })
}

// ---------------------------------------------------------------------------------------------
// Report

/// What happened to the rows of one table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub new: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub removed: u64,
}

impl Tally {
    /// The rows of the input this tally covers, written or not.
    pub fn rows(&self) -> u64 {
        self.new + self.updated + self.unchanged
    }
}

/// Rows written per table.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub users: Tally,
    pub accounts: Tally,
    pub campaigns: Tally,
    pub campaign_costs: Tally,
    pub leads: Tally,
    /// Erased leads in the input: left as they are.
    pub erased_leads_skipped: u64,
    pub stage_history: Tally,
    pub touchpoints: Tally,
    pub opportunities: Tally,
    pub opportunity_contacts: Tally,
    /// Terms added to the workspace's vocabularies (`--add-vocabulary`): (kind, code).
    pub vocabulary: Vec<(&'static str, String)>,
    /// Changes written to the change feed (docs/changes.md).
    pub changes: u64,
}

impl Counts {
    /// The tally of every table, named as in the report.
    pub fn tables(&self) -> [(&'static str, Tally); 9] {
        [
            ("users", self.users),
            ("accounts", self.accounts),
            ("campaigns", self.campaigns),
            ("campaign_costs", self.campaign_costs),
            ("leads", self.leads),
            ("lead_stage_history", self.stage_history),
            ("touchpoints", self.touchpoints),
            ("opportunities", self.opportunities),
            ("opportunity_contacts", self.opportunity_contacts),
        ]
    }

    /// Rows inserted, changed or removed, over all tables: 0 when the import changed nothing.
    pub fn written(&self) -> u64 {
        self.tables().iter().map(|(_, t)| t.new + t.updated + t.removed).sum()
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        for (name, t) in self.tables() {
            let mut bits = Vec::new();
            for (n, what) in [
                (t.new, "new"),
                (t.updated, "updated"),
                (t.unchanged, "unchanged"),
                (t.removed, "removed"),
            ] {
                if n > 0 {
                    bits.push(format!("{n} {what}"));
                }
            }
            if !bits.is_empty() {
                parts.push(format!("{name} {}", bits.join(", ")));
            }
        }
        if self.erased_leads_skipped > 0 {
            parts.push(format!("{} erased leads left alone", self.erased_leads_skipped));
        }
        if self.changes > 0 {
            parts.push(format!("{} changes in the feed", self.changes));
        }
        if !self.vocabulary.is_empty() {
            let terms: Vec<String> = self
                .vocabulary
                .iter()
                .map(|(kind, code)| format!("{} {code}", kind.to_ascii_lowercase().replace('_', " ")))
                .collect();
            parts.push(format!("added to the vocabularies: {}", terms.join(", ")));
        }
        if parts.is_empty() {
            f.write_str("nothing to import")
        } else {
            f.write_str(&parts.join("; "))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

/// What one `closedloop import` did: where it read, which workspace it wrote, and the rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub dir: PathBuf,
    pub workspace: String,
    pub counts: Counts,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "imported {} into workspace {:?}: {}",
            self.dir.display(),
            self.workspace,
            self.counts
        )
    }
}

/// `closedloop import DIR --workspace NAME` with the default options.
pub async fn run(db: &Db, dir: &Path, workspace: &str) -> Result<Report, BoxError> {
    run_with(db, dir, workspace, &Options::default()).await
}

/// `closedloop import DIR --workspace NAME [--max-problems N] [--max-cell-bytes N] [--add-vocabulary]`.
pub async fn run_with(db: &Db, dir: &Path, workspace: &str, o: &Options) -> Result<Report, BoxError> {
    run_showing(db, dir, workspace, o, &Progress::hidden()).await
}

/// As [`run_with`], showing each table's rows as they are written, and timing them.
pub async fn run_showing(db: &Db, dir: &Path, workspace: &str, o: &Options, progress: &Progress) -> Result<Report, BoxError> {
    if !dir.is_dir() {
        return Err(format!("{} is not a directory", dir.display()).into());
    }
    // touchpoints.csv is read while the other files are read, checked and written; its rows
    // are checked and written last, in the same transaction.
    let (owned, options) = (dir.to_owned(), *o);
    let touchpoints = Touchpoints::Reading(tokio::task::spawn_blocking(move || read_touchpoints(&owned, options)));
    let owned = dir.to_owned();
    let (data, read) = tokio::task::spawn_blocking(move || read_rest(&owned, options)).await??;
    let mut txn = db.begin_write_unscoped().await?;
    let ws = workspace_in(&*txn, workspace).await?;
    txn.revises(ws.id);
    let cache = BigCache::enter(&*txn).await?;
    let counts = apply_parts(&*txn, &ws, data, read, touchpoints, o, progress).await;
    cache.leave(&*txn).await?;
    let counts = counts?;
    txn.commit().await?;
    Ok(Report {
        dir: dir.to_owned(),
        workspace: ws.name,
        counts,
    })
}

/// Checks `data` and writes it into the workspace called `workspace` (created if missing) in
/// one transaction; on any problem nothing is written, not even the workspace.
pub async fn apply(db: &Db, workspace: &str, mut data: Dataset, progress: &Progress) -> Result<Counts, BoxError> {
    let mut txn = db.begin_write_unscoped().await?;
    let ws = workspace_in(&*txn, workspace).await?;
    txn.revises(ws.id);
    let cache = BigCache::enter(&*txn).await?;
    let touchpoints = Touchpoints::Ready(std::mem::take(&mut data.touchpoints));
    let counts = apply_parts(&*txn, &ws, data, Read::default(), touchpoints, &Options::default(), progress).await;
    cache.leave(&*txn).await?;
    let counts = counts?;
    txn.commit().await?;
    Ok(counts)
}

/// SQLite: while an import writes, a page cache big enough for the indexes of large tables (pages
/// are allocated only when used), so that they are not written out and read back mid-transaction.
/// The connection's own size is restored before the transaction ends.
struct BigCache(Option<i64>);

impl BigCache {
    const KIB: i64 = 1 << 20;

    async fn enter(db: &impl ConnectionTrait) -> Result<Self, DbErr> {
        if db.get_database_backend() != DbBackend::Sqlite {
            return Ok(Self(None));
        }
        let row = db
            .query_one_raw(Statement::from_string(DbBackend::Sqlite, "PRAGMA cache_size"))
            .await?;
        let before = row.map(|r| r.try_get_by_index::<i64>(0)).transpose()?;
        db.execute_unprepared(&format!("PRAGMA cache_size = -{}", Self::KIB)).await?;
        Ok(Self(before))
    }

    async fn leave(self, db: &impl ConnectionTrait) -> Result<(), DbErr> {
        if let Some(size) = self.0 {
            db.execute_unprepared(&format!("PRAGMA cache_size = {size}")).await?;
        }
        Ok(())
    }
}

/// The workspace called `name`, inserted (with the default funnel and vocabularies) if missing.
pub async fn workspace_in(db: &impl ConnectionTrait, name: &str) -> Result<workspace::Model, BoxError> {
    let name = name.trim();
    if name.is_empty() {
        return Err("a workspace needs a name".into());
    }
    Ok(match store::workspace::by_name(db, name).await? {
        Some(ws) => ws,
        None => {
            let ws = store::workspace::insert(db, name, NEW_WORKSPACE_CURRENCY).await?;
            crate::service::attribution::current_models(db, ws.id).await?;
            ws
        }
    })
}

/// For existing rows: the new value of a field when the patch changes it.
fn changed<T: Clone + PartialEq>(patch: &Patch<T>, current: &Option<T>) -> Option<Option<T>> {
    let next = match patch {
        Patch::Keep => return None,
        Patch::Clear => None,
        Patch::Set(v) => Some(v.clone()),
    };
    (next != *current).then_some(next)
}

/// For new rows: the value of a field.
fn initial<T: Clone>(patch: &Patch<T>) -> Option<T> {
    patch.as_set().cloned()
}

/// Sets `$am.$field` when the patch changes `$cur.$field`.
macro_rules! patch_field {
    ($am:ident, $dirty:ident, $cur:expr, $row:expr, $($field:ident),+) => {$(
        if let Some(v) = changed(&$row.$field, &$cur.$field) {
            $am.$field = Set(v);
            $dirty = true;
        }
    )+};
}

/// Reports every second use of a key among `rows` and the rows `left` out (in line order).
fn check_unique<'a, T>(
    rows: &'a [T],
    key: impl Fn(&'a T) -> (&'a str, u64),
    left: &'a [(String, u64)],
    file: &'static str,
    column: &'static str,
    p: &mut Problems,
) {
    let mut keys: Vec<(&str, u64)> = rows.iter().map(key).collect();
    if !left.is_empty() {
        keys.extend(left.iter().map(|(k, l)| (k.as_str(), *l)));
        keys.sort_by_key(|(_, line)| *line);
    }
    let mut seen: HashMap<&str, u64> = HashMap::with_capacity(keys.len());
    for (k, line) in keys {
        if let Some(first) = seen.insert(k, line) {
            p.add(file, line, column, format!("{k:?} appears twice (also on line {first})"));
        }
    }
}

/// Stages a lead went through: (stage key, entered at), in order.
type StagePath<'a> = Vec<(&'a str, DateTime<Utc>)>;

/// The stage path of a new lead from its row: (stage key, entered at).
///
/// Without `converted_at` the lead enters its stage at `created_at`. With it, the lead enters the
/// first stage at `created_at` and MQL at `converted_at`; a lead now in another stage moves there
/// at `converted_at` too (the source does not say when, and it cannot be earlier).
pub fn derived_path<'a>(first: &'a str, stage: &'a str, created: DateTime<Utc>, converted: Option<DateTime<Utc>>) -> StagePath<'a> {
    match converted {
        None => vec![(stage, created)],
        Some(at) => {
            let mut path = vec![(first, created), ("MQL", at)];
            if stage != "MQL" {
                path.push((stage, at));
            }
            path
        }
    }
}

fn default_status(start: Option<NaiveDate>, end: Option<NaiveDate>, today: NaiveDate) -> CampaignStatus {
    match (start, end) {
        (_, Some(e)) if e < today => CampaignStatus::Completed,
        (Some(s), _) if s <= today => CampaignStatus::Active,
        _ => CampaignStatus::Planned,
    }
}

fn ts(t: DateTime<Utc>) -> Value {
    Value::ChronoDateTimeUtc(Some(t))
}

fn text(s: &str) -> Value {
    Value::String(Some(s.to_owned()))
}

/// The funnel of a workspace.
struct Funnel {
    ids: HashMap<String, i64>,
    /// Keys in funnel order.
    keys: Vec<String>,
    /// Where new leads start (LEAD by default).
    first: (String, i64),
    mql: Option<i64>,
}

/// What the workspace holds already: its vocabularies and funnel, and the stored rows the input
/// names, by external ID.
struct Stored {
    channels: HashSet<String>,
    types: HashSet<String>,
    categories: HashSet<String>,
    funnel: Funnel,
    users: HashMap<String, user::Model>,
    users_by_email: HashMap<String, user::Model>,
    accounts: HashMap<String, account::Model>,
    campaigns: HashMap<String, campaign::Model>,
    campaigns_by_code: HashMap<String, campaign::Model>,
    leads: HashMap<String, lead::Model>,
    leads_by_email: HashMap<String, lead::Model>,
    opportunities: HashMap<String, opportunity::Model>,
    /// Buying-center members of the stored opportunities the input names, by (opportunity, lead).
    contacts: HashMap<(i64, i64), opportunity_contact::Model>,
    /// Cost lines of the stored campaigns the input names.
    costs: Vec<campaign_cost::Model>,
    /// Rows of the input left out for format problems.
    left_out: LeftOut,
}

/// Internal ids by external ID, of stored rows and of rows written by this import.
#[derive(Default)]
struct Ids {
    users: HashMap<String, i64>,
    accounts: HashMap<String, i64>,
    campaigns: HashMap<String, i64>,
    leads: HashMap<String, i64>,
    opportunities: HashMap<String, i64>,
}

/// Touchpoint rows: at hand, or still being read.
enum Touchpoints {
    Ready(Vec<TouchpointRow>),
    Reading(tokio::task::JoinHandle<Result<(Vec<TouchpointRow>, Read), BoxError>>),
}

/// Checks `data` against the workspace and writes it, inside the caller's transaction; on a
/// problem the caller must roll back (some rows may have been written).
pub async fn apply_in(db: &impl ConnectionTrait, ws: &workspace::Model, mut data: Dataset) -> Result<Counts, BoxError> {
    let touchpoints = Touchpoints::Ready(std::mem::take(&mut data.touchpoints));
    apply_parts(db, ws, data, Read::default(), touchpoints, &Options::default(), &Progress::hidden()).await
}

/// Everything but the touchpoints is checked and (when fine) written first; then the touchpoints,
/// which may still have been read meanwhile. Problems of both parts are reported together.
async fn apply_parts(
    db: &impl ConnectionTrait,
    ws: &workspace::Model,
    data: Dataset,
    read: Read,
    touchpoints: Touchpoints,
    o: &Options,
    progress: &Progress,
) -> Result<Counts, BoxError> {
    // Whole seconds: the same stamp on a million rows, ten bytes shorter each.
    let now = Utc::now().trunc_subsecs(0);
    let clock = std::time::Instant::now();
    let lap = |what: &str| tracing::debug!(what, seconds = clock.elapsed().as_secs_f64(), "import");
    // Every row is checked, also when others have format problems: those are left out, and
    // their IDs count as known so that rows naming them are not reported as well.
    let mut p = read.problems;
    let mut counts = Counts::default();
    let mut ids = Ids::default();
    // PostgreSQL: the workspace's other writes wait (and are seen) until the import commits, so
    // its before-and-after comparison for the change feed sees its own writes only.
    store::lead::lock_lead_writes(db, ws.id).await?;
    let mut stored = load(db, ws.id, &data).await?;
    stored.left_out = read.left_out;
    let cx = Cx { ws, now, progress };
    if o.add_vocabulary {
        counts.vocabulary = adopt_terms(&data, &[], &mut stored);
    }
    stored.leads.extend(check(&data, &stored, &mut p));
    // What the followed tables hold before the import writes: the change feed's "before".
    let mut snapshot = changes::Snapshot::take(db, &stored).await?;
    lap("checked");
    if p.is_empty() {
        let n = |rows: usize| Some(rows as u64);
        progress.start("users", n(data.users.len()));
        counts.users = write_users(db, &cx, &data.users, &stored, &mut ids).await?;
        progress.done(data.users.len() as u64);
        progress.start("accounts", n(data.accounts.len()));
        counts.accounts = write_accounts(db, &cx, &data.accounts, &stored, &mut ids).await?;
        progress.done(data.accounts.len() as u64);
        progress.start("campaigns", n(data.campaigns.len()));
        counts.campaigns = write_campaigns(db, &cx, &data.campaigns, &stored, &mut ids).await?;
        progress.done(data.campaigns.len() as u64);
        progress.start("campaign_costs", None);
        counts.campaign_costs = write_costs(db, &cx, &data, &stored, &ids).await?;
        progress.done(counts.campaign_costs.rows());
        progress.start("leads", n(data.leads.len()));
        (counts.leads, counts.stage_history, counts.erased_leads_skipped) = write_leads(db, &cx, &data.leads, &stored, &mut ids).await?;
        progress.done(data.leads.len() as u64);
        progress.start("opportunities", n(data.opportunities.len()));
        counts.opportunities = write_opportunities(db, &cx, &data.opportunities, &stored, &mut ids).await?;
        progress.done(data.opportunities.len() as u64);
        progress.start("opportunity_contacts", n(data.contacts.len()));
        counts.opportunity_contacts = write_contacts(db, &cx, &data.contacts, &stored, &ids).await?;
        progress.done(data.contacts.len() as u64);
        lap("written all but touchpoints");
    }
    let rows = match touchpoints {
        Touchpoints::Ready(rows) => rows,
        Touchpoints::Reading(job) => {
            let (rows, read) = job.await??;
            p.merge(read.problems);
            stored.left_out.merge(read.left_out);
            rows
        }
    };
    lap("touchpoints read");
    if o.add_vocabulary {
        let types = adopt_terms(&Dataset::default(), &rows, &mut stored);
        counts.vocabulary.extend(types);
    }
    let refs = touchpoint_refs(db, ws.id, &data, &stored, &rows).await?;
    check_touchpoints(&data, &stored, &refs, &rows, &mut p);
    lap("touchpoints checked");
    if !p.is_empty() {
        return Err(Rejected::from(p).into());
    }
    write_terms(db, ws.id, &counts.vocabulary, now).await?;
    snapshot.also_leads(db, ws.id, refs.leads.values().copied()).await?;
    ids.leads.extend(refs.leads);
    ids.campaigns.extend(refs.campaigns);
    progress.start("touchpoints", Some(rows.len() as u64));
    counts.touchpoints = write_touchpoints(db, &cx, &rows, &refs.stored, &ids).await?;
    progress.done(rows.len() as u64);
    lap("touchpoints written");
    progress.start("change feed", None);
    counts.changes = snapshot.record(db, ws.id, now).await?;
    progress.done(counts.changes);
    lap("changes recorded");
    let mut lead_ids: Vec<i64> = ids.leads.values().copied().collect();
    lead_ids.sort_unstable();
    progress.start("persona matches", None);
    crate::service::persona::refresh_leads(db, ws.id, &lead_ids).await?;
    progress.done(lead_ids.len() as u64);
    lap("persona matches written");
    // An import loads history: scores are brought up to date, but nobody is handed off.
    progress.start("scores", None);
    crate::service::scoring::refresh_leads(db, ws.id, &lead_ids).await?;
    progress.done(lead_ids.len() as u64);
    lap("scores written");
    progress.start("attribution ledger", None);
    // The ledger of every won deal the import touched: its own deals and those of its leads.
    let mut deals = crate::store::attribution::won_deals_of_leads(db, ws.id, &lead_ids, None).await?;
    deals.extend(ids.opportunities.values().copied());
    deals.sort_unstable();
    deals.dedup();
    crate::service::attribution::refresh_deals(db, ws.id, &deals).await?;
    crate::service::attribution::catch_up(db, ws.id).await?;
    progress.done(deals.len() as u64);
    lap("attribution ledger written");
    Ok(counts)
}

/// What touchpoints refer to beyond the other files: stored touchpoints (by external ID), and
/// stored leads and campaigns the other files do not name.
struct TouchpointRefs {
    stored: HashSet<String>,
    leads: HashMap<String, i64>,
    campaigns: HashMap<String, i64>,
}

async fn touchpoint_refs(
    db: &impl ConnectionTrait,
    ws: i64,
    d: &Dataset,
    s: &Stored,
    rows: &[TouchpointRow],
) -> Result<TouchpointRefs, DbErr> {
    // A named function, not a closure: a closure returning borrowed IDs makes this future
    // not `Send` for every lifetime (rustc cannot prove it general enough).
    fn row_ids(rows: &[TouchpointRow]) -> Vec<&str> {
        rows.iter().map(|r| r.id.as_str()).collect()
    }
    let stored = bulk::stored_keys(db, "touchpoints", "external_id", ws, || row_ids(rows)).await?;
    let file_leads: HashSet<&str> = d.leads.iter().map(|r| r.id.as_str()).collect();
    let leads: HashSet<&str> = rows
        .iter()
        .map(|r| r.lead_id.as_str())
        .filter(|k| !file_leads.contains(k) && !s.leads.contains_key(*k))
        .collect();
    let file_campaigns: HashSet<&str> = d.campaigns.iter().map(|r| r.id.as_str()).collect();
    let campaigns: HashSet<&str> = rows
        .iter()
        .filter_map(|r| r.campaign_id.as_deref())
        .filter(|k| !file_campaigns.contains(k) && !s.campaigns.contains_key(*k))
        .collect();
    Ok(TouchpointRefs {
        stored,
        leads: bulk::ids_by_key(db, "leads", "external_id", ws, &leads.into_iter().collect::<Vec<_>>()).await?,
        campaigns: bulk::ids_by_key(db, "campaigns", "external_id", ws, &campaigns.into_iter().collect::<Vec<_>>()).await?,
    })
}

fn check_touchpoints(d: &Dataset, s: &Stored, refs: &TouchpointRefs, rows: &[TouchpointRow], p: &mut Problems) {
    check_unique(
        rows,
        |r| (r.id.as_str(), r.line),
        s.left_out.rows(TOUCHPOINTS),
        TOUCHPOINTS,
        "id",
        p,
    );
    let file_leads: HashSet<&str> = d.leads.iter().map(|r| r.id.as_str()).collect();
    let file_campaigns: HashSet<&str> = d.campaigns.iter().map(|r| r.id.as_str()).collect();
    let left_leads: HashSet<&str> = s.left_out.ids(LEADS).collect();
    let left_campaigns: HashSet<&str> = s.left_out.ids(CAMPAIGNS).collect();
    let lead_known = |k: &str| file_leads.contains(k) || s.leads.contains_key(k) || refs.leads.contains_key(k) || left_leads.contains(k);
    let campaign_known =
        |k: &str| file_campaigns.contains(k) || s.campaigns.contains_key(k) || refs.campaigns.contains_key(k) || left_campaigns.contains(k);
    let mut types: Vec<&str> = s.types.iter().map(String::as_str).collect();
    types.sort_unstable();
    for r in rows {
        if !lead_known(&r.lead_id) {
            p.add(
                TOUCHPOINTS,
                r.line,
                "lead_id",
                format!("no lead {:?} in {LEADS} or the workspace", r.lead_id),
            );
        }
        if let Some(c) = r.campaign_id.as_deref().filter(|c| !campaign_known(c)) {
            p.add(
                TOUCHPOINTS,
                r.line,
                "campaign_id",
                format!("no campaign {c:?} in {CAMPAIGNS} or the workspace"),
            );
        }
        if !s.types.contains(&r.touch_type) {
            let message = format!(
                "{:?} is not a touchpoint type of this workspace ({})",
                r.touch_type,
                types.join(", ")
            );
            p.add(TOUCHPOINTS, r.line, "type", message);
        }
    }
}

/// `--add-vocabulary`: the channels, cost categories and touchpoint types the rows use that the
/// workspace lacks, now counted as known; in order of first use.
fn adopt_terms(d: &Dataset, touchpoints: &[TouchpointRow], s: &mut Stored) -> Vec<(&'static str, String)> {
    let mut added = Vec::new();
    let mut adopt = |kind: &'static str, known: &mut HashSet<String>, code: &str| {
        // An empty code is the problem of its cell, reported by the check.
        if !code.is_empty() && known.insert(code.to_owned()) {
            added.push((kind, code.to_owned()));
        }
    };
    for r in &d.campaigns {
        adopt(VOCAB_CHANNEL, &mut s.channels, &r.channel);
    }
    for r in &d.costs {
        adopt(VOCAB_COST_CATEGORY, &mut s.categories, &r.category);
    }
    for r in touchpoints {
        adopt(VOCAB_TOUCHPOINT_TYPE, &mut s.types, &r.touch_type);
    }
    added
}

/// Inserts the vocabulary terms an import adopted (labelled with their code).
async fn write_terms(db: &impl ConnectionTrait, ws: i64, terms: &[(&'static str, String)], now: DateTime<Utc>) -> Result<(), DbErr> {
    if terms.is_empty() {
        return Ok(());
    }
    let rows = terms.iter().map(|(kind, code)| entity::vocabulary_term::ActiveModel {
        workspace_id: Set(ws),
        kind: Set((*kind).to_owned()),
        code: Set(code.clone()),
        label: Set(code.clone()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    });
    entity::vocabulary_term::Entity::insert_many(rows).exec(db).await?;
    Ok(())
}

/// Distinct keys.
fn distinct<'a>(keys: impl Iterator<Item = &'a str>) -> Vec<String> {
    let set: HashSet<&str> = keys.collect();
    set.into_iter().map(str::to_owned).collect()
}

/// Stored rows of `E` by a text key (external ID, e-mail, tracking code).
async fn keyed<E: Scoped>(
    db: &impl ConnectionTrait,
    ws: i64,
    column: E::Column,
    keys: impl FnOnce() -> Vec<String>,
    key_of: fn(&E::Model) -> Option<String>,
) -> Result<HashMap<String, E::Model>, DbErr> {
    Ok(bulk::by_keys::<E>(db, ws, column, keys)
        .await?
        .into_iter()
        .filter_map(|m| Some((key_of(&m)?, m)))
        .collect())
}

/// The codes of one of the workspace's vocabularies. (A function, not an async closure taking
/// `&str`: such a closure makes the import's future not `Send`, so no task could run it.)
async fn vocabulary(db: &impl ConnectionTrait, ws: i64, kind: &'static str) -> Result<HashSet<String>, DbErr> {
    Ok(store::workspace::vocabulary(db, ws, kind)
        .await?
        .into_iter()
        .map(|t| t.code)
        .collect())
}

async fn load(db: &impl ConnectionTrait, ws: i64, d: &Dataset) -> Result<Stored, BoxError> {
    let channels = vocabulary(db, ws, VOCAB_CHANNEL).await?;
    let types = vocabulary(db, ws, VOCAB_TOUCHPOINT_TYPE).await?;
    let stages = store::workspace::stages(db, ws).await?;
    let first = stages.first().ok_or("the workspace has no funnel stages")?;
    let funnel = Funnel {
        ids: stages.iter().map(|s| (s.key.clone(), s.id)).collect(),
        keys: stages.iter().map(|s| s.key.clone()).collect(),
        first: (first.key.clone(), first.id),
        mql: stages.iter().find(|s| s.key == "MQL").map(|s| s.id),
    };

    let keys = || {
        let owners = d.leads.iter().filter_map(|r| r.owner_id.as_set());
        let owners = owners.chain(d.opportunities.iter().filter_map(|r| r.owner_id.as_set()));
        distinct(d.users.iter().map(|r| r.id.as_str()).chain(owners.map(String::as_str)))
    };
    let users = keyed::<user::Entity>(db, ws, user::Column::ExternalId, keys, |m| m.external_id.clone()).await?;
    // Only values that would change need to be checked against other rows.
    let keys = || {
        let changing = d
            .users
            .iter()
            .filter(|r| users.get(&r.id).is_none_or(|u| u.email.as_ref() != r.email.as_set()));
        distinct(changing.filter_map(|r| r.email.as_set()).map(String::as_str))
    };
    let users_by_email = keyed::<user::Entity>(db, ws, user::Column::Email, keys, |m| m.email.clone()).await?;

    let keys = || {
        let keys = d.accounts.iter().map(|r| r.id.as_str());
        let keys = keys.chain(d.leads.iter().filter_map(|r| r.account_id.as_set()).map(String::as_str));
        distinct(keys.chain(d.opportunities.iter().map(|r| r.account_id.as_str())))
    };
    let accounts = keyed::<account::Entity>(db, ws, account::Column::ExternalId, keys, |m| m.external_id.clone()).await?;

    let keys = || {
        let keys = d.campaigns.iter().map(|r| r.id.as_str());
        let keys = keys.chain(d.costs.iter().map(|r| r.campaign_id.as_str()));
        distinct(keys)
    };
    let campaigns = keyed::<campaign::Entity>(db, ws, campaign::Column::ExternalId, keys, |m| m.external_id.clone()).await?;
    let keys = || {
        let changing = d.campaigns.iter().filter(|r| {
            campaigns
                .get(&r.id)
                .is_none_or(|c| c.tracking_code.as_ref() != r.tracking_code.as_set())
        });
        distinct(changing.filter_map(|r| r.tracking_code.as_set()).map(String::as_str))
    };
    let campaigns_by_code = keyed::<campaign::Entity>(db, ws, campaign::Column::TrackingCode, keys, |m| m.tracking_code.clone()).await?;

    let keys = || {
        let keys = d.leads.iter().map(|r| r.id.as_str());
        distinct(keys.chain(d.contacts.iter().map(|r| r.lead_id.as_str())))
    };
    let leads = keyed::<lead::Entity>(db, ws, lead::Column::ExternalId, keys, |m| m.external_id.clone()).await?;
    let keys = || {
        let changing = d
            .leads
            .iter()
            .filter(|r| leads.get(&r.id).is_none_or(|l| l.email.as_ref() != r.email.as_set()));
        distinct(changing.filter_map(|r| r.email.as_set()).map(String::as_str))
    };
    let leads_by_email = keyed::<lead::Entity>(db, ws, lead::Column::Email, keys, |m| m.email.clone()).await?;

    let keys = || {
        let keys = d.opportunities.iter().map(|r| r.id.as_str());
        distinct(keys.chain(d.contacts.iter().map(|r| r.opportunity_id.as_str())))
    };
    let opportunities = keyed::<opportunity::Entity>(db, ws, opportunity::Column::ExternalId, keys, |m| m.external_id.clone()).await?;

    let ids: HashSet<i64> = d
        .contacts
        .iter()
        .filter_map(|r| opportunities.get(&r.opportunity_id))
        .map(|o| o.id)
        .collect();
    let ids: Vec<i64> = ids.into_iter().collect();
    let mut contacts = HashMap::new();
    for chunk in ids.chunks(5_000) {
        let rows = opportunity_contact::Entity::in_workspace(ws)
            .filter(opportunity_contact::Column::OpportunityId.is_in(chunk.iter().copied()))
            .all(db)
            .await?;
        contacts.extend(rows.into_iter().map(|c| ((c.opportunity_id, c.lead_id), c)));
    }

    let with_cost = d.campaigns.iter().filter(|r| !matches!(r.cost, Patch::Keep)).map(|r| r.id.as_str());
    let ids: HashSet<i64> = with_cost
        .chain(d.costs.iter().map(|r| r.campaign_id.as_str()))
        .filter_map(|k| campaigns.get(k).map(|c| c.id))
        .collect();
    let ids: Vec<i64> = ids.into_iter().collect();
    let mut costs = Vec::new();
    for chunk in ids.chunks(5_000) {
        costs.extend(
            campaign_cost::Entity::in_workspace(ws)
                .filter(campaign_cost::Column::CampaignId.is_in(chunk.iter().copied()))
                .all(db)
                .await?,
        );
    }
    Ok(Stored {
        channels,
        types,
        categories: vocabulary(db, ws, VOCAB_COST_CATEGORY).await?,
        funnel,
        users,
        users_by_email,
        accounts,
        campaigns,
        campaigns_by_code,
        leads,
        leads_by_email,
        opportunities,
        contacts,
        costs,
        left_out: LeftOut::default(),
    })
}

/// Everything the database is needed for: vocabularies, references, uniqueness. Returns the
/// stored leads without external ID that rows take over by e-mail.
fn check(d: &Dataset, s: &Stored, p: &mut Problems) -> HashMap<String, lead::Model> {
    check_unique(&d.users, |r| (r.id.as_str(), r.line), s.left_out.rows(USERS), USERS, "id", p);
    check_unique(
        &d.accounts,
        |r| (r.id.as_str(), r.line),
        s.left_out.rows(ACCOUNTS),
        ACCOUNTS,
        "id",
        p,
    );
    check_unique(
        &d.campaigns,
        |r| (r.id.as_str(), r.line),
        s.left_out.rows(CAMPAIGNS),
        CAMPAIGNS,
        "id",
        p,
    );
    check_unique(&d.leads, |r| (r.id.as_str(), r.line), s.left_out.rows(LEADS), LEADS, "id", p);
    check_unique(
        &d.opportunities,
        |r| (r.id.as_str(), r.line),
        s.left_out.rows(OPPORTUNITIES),
        OPPORTUNITIES,
        "id",
        p,
    );

    // Users.
    let mut seen: HashMap<&str, u64> = HashMap::new();
    for r in &d.users {
        if let Patch::Set(e) = &r.email {
            if let Some(first) = seen.insert(e, r.line) {
                p.add(USERS, r.line, "email", format!("{e:?} appears twice (also on line {first})"));
            } else if s
                .users_by_email
                .get(e)
                .is_some_and(|u| u.external_id.as_deref() != Some(r.id.as_str()))
            {
                p.add(USERS, r.line, "email", format!("{e:?} belongs to another user"));
            }
        }
    }
    let users: HashSet<&str> = d
        .users
        .iter()
        .map(|r| r.id.as_str())
        .chain(s.users.keys().map(String::as_str))
        .chain(s.left_out.ids(USERS))
        .collect();
    let accounts: HashSet<&str> = d
        .accounts
        .iter()
        .map(|r| r.id.as_str())
        .chain(s.accounts.keys().map(String::as_str))
        .chain(s.left_out.ids(ACCOUNTS))
        .collect();

    // Campaigns and their costs.
    let mut channels: Vec<&str> = s.channels.iter().map(String::as_str).collect();
    channels.sort_unstable();
    let mut seen: HashMap<&str, u64> = HashMap::new();
    for r in &d.campaigns {
        if !s.channels.contains(&r.channel) {
            let message = format!("{:?} is not a channel of this workspace ({})", r.channel, channels.join(", "));
            p.add(CAMPAIGNS, r.line, "channel", message);
        }
        if let Patch::Set(code) = &r.tracking_code {
            if let Some(first) = seen.insert(code, r.line) {
                p.add(
                    CAMPAIGNS,
                    r.line,
                    "tracking_code",
                    format!("{code:?} appears twice (also on line {first})"),
                );
            } else if s
                .campaigns_by_code
                .get(code)
                .is_some_and(|c| c.external_id.as_deref() != Some(r.id.as_str()))
            {
                p.add(CAMPAIGNS, r.line, "tracking_code", format!("{code:?} belongs to another campaign"));
            }
        }
        let stored = s.campaigns.get(&r.id);
        let start = r.start_date.clone().resolve(stored.and_then(|c| c.start_date));
        let end = r.end_date.clone().resolve(stored.and_then(|c| c.end_date));
        if start.zip(end).is_some_and(|(s, e)| e < s) {
            p.add(CAMPAIGNS, r.line, "end_date", "is before start_date");
        }
        if matches!(r.cost, Patch::Set(c) if c != 0) && start.is_none() {
            p.add(CAMPAIGNS, r.line, "cost", "needs a start_date: the cost line is dated on it");
        }
    }
    let campaigns: HashSet<&str> = d
        .campaigns
        .iter()
        .map(|r| r.id.as_str())
        .chain(s.campaigns.keys().map(String::as_str))
        .chain(s.left_out.ids(CAMPAIGNS))
        .collect();
    let mut categories: Vec<&str> = s.categories.iter().map(String::as_str).collect();
    categories.sort_unstable();
    for r in &d.costs {
        if !campaigns.contains(r.campaign_id.as_str()) {
            p.add(
                COSTS,
                r.line,
                "campaign_id",
                format!("no campaign {:?} in {CAMPAIGNS} or the workspace", r.campaign_id),
            );
        }
        if !s.categories.contains(&r.category) {
            let message = format!(
                "{:?} is not a cost category of this workspace ({})",
                r.category,
                categories.join(", ")
            );
            p.add(COSTS, r.line, "category", message);
        }
    }

    // Leads.
    let mut seen: HashMap<&str, u64> = HashMap::new();
    let mut adopted: HashMap<String, lead::Model> = HashMap::new();
    for r in &d.leads {
        if let Patch::Set(a) = &r.account_id
            && !accounts.contains(a.as_str())
        {
            p.add(
                LEADS,
                r.line,
                "account_id",
                format!("no account {a:?} in {ACCOUNTS} or the workspace"),
            );
        }
        if let Patch::Set(u) = &r.owner_id
            && !users.contains(u.as_str())
        {
            p.add(LEADS, r.line, "owner_id", format!("no user {u:?} in {USERS} or the workspace"));
        }
        for key in r.stage.iter().chain(r.history.iter().map(|(k, _)| k)) {
            if !s.funnel.ids.contains_key(key) {
                p.add(
                    LEADS,
                    r.line,
                    "stage",
                    format!("{key:?} is not a funnel stage ({})", s.funnel.keys.join(", ")),
                );
            }
        }
        let stored = s.leads.get(&r.id);
        if let Patch::Set(e) = &r.email {
            if let Some(first) = seen.insert(e, r.line) {
                p.add(LEADS, r.line, "email", format!("{e:?} appears twice (also on line {first})"));
            } else if let Some(other) = s.leads_by_email.get(e) {
                match (stored, &other.external_id) {
                    (Some(me), _) if me.id == other.id => {}
                    (None, None) => {
                        adopted.insert(r.id.clone(), other.clone());
                    }
                    (_, Some(x)) => p.add(LEADS, r.line, "email", format!("{e:?} belongs to the lead with id {x:?}")),
                    (Some(_), None) => p.add(LEADS, r.line, "email", format!("{e:?} belongs to another lead")),
                }
            }
        }
        if let Patch::Set(at) = r.converted_at {
            if stored.map(|l| l.created_at).or(r.created_at).is_some_and(|created| at < created) {
                p.add(LEADS, r.line, "converted_at", "is before created_at");
            }
            if s.funnel.mql.is_none() {
                p.add(LEADS, r.line, "converted_at", "the workspace's funnel has no MQL stage");
            }
        }
    }
    let leads: HashSet<&str> = d
        .leads
        .iter()
        .map(|r| r.id.as_str())
        .chain(s.leads.keys().map(String::as_str))
        .chain(adopted.keys().map(String::as_str))
        .chain(s.left_out.ids(LEADS))
        .collect();

    // Opportunities.
    for r in &d.opportunities {
        if !accounts.contains(r.account_id.as_str()) {
            p.add(
                OPPORTUNITIES,
                r.line,
                "account_id",
                format!("no account {:?} in {ACCOUNTS} or the workspace", r.account_id),
            );
        }
        if let Patch::Set(u) = &r.owner_id
            && !users.contains(u.as_str())
        {
            p.add(
                OPPORTUNITIES,
                r.line,
                "owner_id",
                format!("no user {u:?} in {USERS} or the workspace"),
            );
        }
        match (r.status, r.closed_at) {
            (OpportunityStatus::Open, Some(_)) => p.add(OPPORTUNITIES, r.line, "closed_at", "must be empty for an open opportunity"),
            (OpportunityStatus::Won | OpportunityStatus::Lost, None) => {
                p.add(OPPORTUNITIES, r.line, "closed_at", "is required for a won or lost opportunity")
            }
            (_, Some(c)) if c < r.created_at => p.add(OPPORTUNITIES, r.line, "closed_at", "is before created_at"),
            _ => {}
        }
    }
    let opportunities: HashSet<&str> = d
        .opportunities
        .iter()
        .map(|r| r.id.as_str())
        .chain(s.opportunities.keys().map(String::as_str))
        .chain(s.left_out.ids(OPPORTUNITIES))
        .collect();

    // Buying centers: each lead once per opportunity, at most one primary contact after the
    // import (the stored ones the input leaves alone plus the input's). A contact is named by its
    // lead's internal id when the lead is stored, by its external ID when it is new.
    let mut seen: HashMap<(&str, &str), u64> = HashMap::new();
    let mut primaries: HashMap<&str, HashSet<String>> = HashMap::new();
    for r in &d.contacts {
        if !opportunities.contains(r.opportunity_id.as_str()) {
            let message = format!("no opportunity {:?} in {OPPORTUNITIES} or the workspace", r.opportunity_id);
            p.add(CONTACTS, r.line, "opportunity_id", message);
        }
        if !leads.contains(r.lead_id.as_str()) {
            p.add(
                CONTACTS,
                r.line,
                "lead_id",
                format!("no lead {:?} in {LEADS} or the workspace", r.lead_id),
            );
        }
        if let Some(first) = seen.insert((r.opportunity_id.as_str(), r.lead_id.as_str()), r.line) {
            let message = format!("the lead is listed twice for this opportunity (also on line {first})");
            p.add(CONTACTS, r.line, "lead_id", message);
        }
        if let Some(primary) = r.is_primary {
            let set = primaries
                .entry(r.opportunity_id.as_str())
                .or_insert_with(|| match s.opportunities.get(&r.opportunity_id) {
                    Some(o) => s
                        .contacts
                        .values()
                        .filter(|c| c.opportunity_id == o.id && c.is_primary)
                        .map(|c| format!("#{}", c.lead_id))
                        .collect(),
                    None => HashSet::new(),
                });
            let stored_lead = s.leads.get(&r.lead_id).or_else(|| adopted.get(&r.lead_id));
            let key = stored_lead.map_or_else(|| r.lead_id.clone(), |l| format!("#{}", l.id));
            set.remove(&key);
            if primary {
                set.insert(key);
                if set.len() > 1 {
                    p.add(
                        CONTACTS,
                        r.line,
                        "is_primary",
                        "the opportunity has another primary contact already",
                    );
                }
            }
        }
    }
    adopted
}

/// What every writer needs.
struct Cx<'a> {
    ws: &'a workspace::Model,
    now: DateTime<Utc>,
    /// Counts the rows of the large tables as they are written.
    progress: &'a Progress,
}

/// Updates the columns set in `am` of row `id`.
async fn update_row<E: Scoped>(db: &impl ConnectionTrait, ws: i64, id: i64, am: E::ActiveModel) -> Result<(), DbErr>
where
    E::ActiveModel: sea_orm::ActiveModelTrait<Entity = E>,
{
    E::update_many()
        .set(am)
        .filter(E::workspace_col().eq(ws))
        .filter(E::id_col().eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Adds the (id, external ID) pairs RETURNING gave to an id map.
fn remember(ids: &mut HashMap<String, i64>, returned: Vec<(i64, String)>) {
    ids.extend(returned.into_iter().map(|(id, key)| (key, id)));
}

async fn write_users(db: &impl ConnectionTrait, cx: &Cx<'_>, rows: &[UserRow], s: &Stored, ids: &mut Ids) -> Result<Tally, DbErr> {
    const COLUMNS: &[&str] = &[
        "workspace_id",
        "external_id",
        "name",
        "email",
        "team",
        "active",
        "created_at",
        "updated_at",
    ];
    let (ws, now) = (cx.ws.id, cx.now);
    let mut tally = Tally::default();
    let mut ins = Inserter::new("users", COLUMNS).returning("external_id");
    for r in rows {
        let Some(cur) = s.users.get(&r.id) else {
            let (email, team) = (initial(&r.email), initial(&r.team));
            let row = [
                ws.into(),
                text(&r.id),
                text(&r.name),
                email.into(),
                team.into(),
                r.active.unwrap_or(true).into(),
                ts(now),
                ts(now),
            ];
            ins.push(db, row).await?;
            continue;
        };
        let mut am = user::ActiveModel::default();
        let mut dirty = false;
        if cur.name != r.name {
            am.name = Set(r.name.clone());
            dirty = true;
        }
        patch_field!(am, dirty, cur, r, email, team);
        if let Some(a) = r.active.filter(|a| *a != cur.active) {
            am.active = Set(a);
            dirty = true;
        }
        if dirty {
            am.updated_at = Set(now);
            update_row::<user::Entity>(db, ws, cur.id, am).await?;
            tally.updated += 1;
        } else {
            tally.unchanged += 1;
        }
    }
    let (n, returned) = ins.finish(db).await?;
    tally.new = n;
    ids.users = s.users.iter().map(|(k, m)| (k.clone(), m.id)).collect();
    remember(&mut ids.users, returned);
    Ok(tally)
}

async fn write_accounts(db: &impl ConnectionTrait, cx: &Cx<'_>, rows: &[AccountRow], s: &Stored, ids: &mut Ids) -> Result<Tally, DbErr> {
    const COLUMNS: &[&str] = &[
        "workspace_id",
        "external_id",
        "name",
        "domain",
        "industry",
        "employee_count",
        "annual_revenue_minor",
        "country",
        "customer_status",
        "created_at",
        "updated_at",
    ];
    let (ws, now) = (cx.ws.id, cx.now);
    let mut tally = Tally::default();
    let mut ins = Inserter::new("accounts", COLUMNS).returning("external_id");
    for r in rows {
        let Some(cur) = s.accounts.get(&r.id) else {
            let status = r.customer_status.unwrap_or(LifecycleStatus::Lead);
            let row = [
                ws.into(),
                text(&r.id),
                text(&r.name),
                initial(&r.domain).into(),
                initial(&r.industry).into(),
                initial(&r.employee_count).into(),
                initial(&r.annual_revenue).into(),
                initial(&r.country).into(),
                text(status.as_str()),
                ts(now),
                ts(now),
            ];
            ins.push(db, row).await?;
            continue;
        };
        let mut am = account::ActiveModel::default();
        let mut dirty = false;
        if cur.name != r.name {
            am.name = Set(r.name.clone());
            dirty = true;
        }
        patch_field!(am, dirty, cur, r, domain, industry, employee_count, country);
        if let Some(v) = changed(&r.annual_revenue, &cur.annual_revenue_minor) {
            am.annual_revenue_minor = Set(v);
            dirty = true;
        }
        if let Some(st) = r.customer_status.filter(|st| st.as_str() != cur.customer_status) {
            am.customer_status = Set(st.as_str().to_owned());
            dirty = true;
        }
        if dirty {
            am.updated_at = Set(now);
            update_row::<account::Entity>(db, ws, cur.id, am).await?;
            tally.updated += 1;
        } else {
            tally.unchanged += 1;
        }
    }
    let (n, returned) = ins.finish(db).await?;
    tally.new = n;
    ids.accounts = s.accounts.iter().map(|(k, m)| (k.clone(), m.id)).collect();
    remember(&mut ids.accounts, returned);
    Ok(tally)
}

async fn write_campaigns(db: &impl ConnectionTrait, cx: &Cx<'_>, rows: &[CampaignRow], s: &Stored, ids: &mut Ids) -> Result<Tally, DbErr> {
    const COLUMNS: &[&str] = &[
        "workspace_id",
        "external_id",
        "name",
        "channel",
        "kind",
        "status",
        "tracking_code",
        "start_date",
        "end_date",
        "budget_minor",
        "expected_revenue_minor",
        "expected_leads",
        "currency",
        "touchpoint_count",
        "created_at",
        "updated_at",
    ];
    let (ws, now) = (cx.ws.id, cx.now);
    let mut tally = Tally::default();
    let mut ins = Inserter::new("campaigns", COLUMNS).returning("external_id");
    for r in rows {
        let Some(cur) = s.campaigns.get(&r.id) else {
            let (start, end) = (initial(&r.start_date), initial(&r.end_date));
            let status = r.status.unwrap_or_else(|| default_status(start, end, now.date_naive()));
            let row = [
                ws.into(),
                text(&r.id),
                text(&r.name),
                text(&r.channel),
                text(r.kind.unwrap_or(CampaignKind::Acquisition).as_str()),
                text(status.as_str()),
                initial(&r.tracking_code).into(),
                start.into(),
                end.into(),
                initial(&r.budget).into(),
                initial(&r.expected_revenue).into(),
                initial(&r.expected_leads).into(),
                text(&cx.ws.currency),
                0_i64.into(),
                ts(now),
                ts(now),
            ];
            ins.push(db, row).await?;
            continue;
        };
        let mut am = campaign::ActiveModel::default();
        let mut dirty = false;
        if cur.name != r.name {
            am.name = Set(r.name.clone());
            dirty = true;
        }
        if cur.channel != r.channel {
            am.channel = Set(r.channel.clone());
            dirty = true;
        }
        if let Some(k) = r.kind.filter(|k| k.as_str() != cur.kind) {
            am.kind = Set(k.as_str().to_owned());
            dirty = true;
        }
        if let Some(st) = r.status.filter(|st| st.as_str() != cur.status) {
            am.status = Set(st.as_str().to_owned());
            dirty = true;
        }
        patch_field!(am, dirty, cur, r, tracking_code, start_date, end_date);
        if let Some(v) = changed(&r.budget, &cur.budget_minor) {
            am.budget_minor = Set(v);
            dirty = true;
        }
        if let Some(v) = changed(&r.expected_revenue, &cur.expected_revenue_minor) {
            am.expected_revenue_minor = Set(v);
            dirty = true;
        }
        patch_field!(am, dirty, cur, r, expected_leads);
        if dirty {
            am.updated_at = Set(now);
            update_row::<campaign::Entity>(db, ws, cur.id, am).await?;
            tally.updated += 1;
        } else {
            tally.unchanged += 1;
        }
    }
    let (n, returned) = ins.finish(db).await?;
    tally.new = n;
    ids.campaigns = s.campaigns.iter().map(|(k, m)| (k.clone(), m.id)).collect();
    remember(&mut ids.campaigns, returned);
    Ok(tally)
}

/// The cost line of each campaign's `cost` column, then the lines of campaign_costs.csv. Cost
/// lines have no ID: a line equal to a stored one (campaign, date, category, amount, note) counts
/// as that one, so a re-run adds nothing.
async fn write_costs(db: &impl ConnectionTrait, cx: &Cx<'_>, d: &Dataset, s: &Stored, ids: &Ids) -> Result<Tally, DbErr> {
    const COLUMNS: &[&str] = &[
        "workspace_id",
        "campaign_id",
        "category",
        "amount_minor",
        "incurred_on",
        "note",
        "created_at",
        "updated_at",
    ];
    let (ws, now) = (cx.ws.id, cx.now);
    let mut tally = Tally::default();
    let is_cost_line = |c: &campaign_cost::Model| c.note.as_deref() == Some(COST_NOTE);
    let cost_lines: HashMap<i64, &campaign_cost::Model> = s.costs.iter().filter(|c| is_cost_line(c)).map(|c| (c.campaign_id, c)).collect();
    type Line = (i64, NaiveDate, String, i64, Option<String>);
    let mut stored_lines: HashMap<Line, u64> = HashMap::new();
    for c in s.costs.iter().filter(|c| !is_cost_line(c)) {
        *stored_lines
            .entry((c.campaign_id, c.incurred_on, c.category.clone(), c.amount_minor, c.note.clone()))
            .or_default() += 1;
    }
    let other = CostCategory::Other.as_str();
    let mut ins = Inserter::new("campaign_costs", COLUMNS);
    for r in &d.campaigns {
        let campaign_id = ids.campaigns[&r.id];
        match (&r.cost, cost_lines.get(&campaign_id)) {
            (Patch::Keep, _) => {}
            (Patch::Set(amount), line) if *amount != 0 => {
                let date = r.start_date.clone().resolve(s.campaigns.get(&r.id).and_then(|c| c.start_date));
                let date = date.expect("checked: a cost needs a start date");
                match line {
                    None => {
                        let row = [
                            ws.into(),
                            campaign_id.into(),
                            text(other),
                            (*amount).into(),
                            date.into(),
                            text(COST_NOTE),
                            ts(now),
                            ts(now),
                        ];
                        ins.push(db, row).await?;
                    }
                    Some(c) if c.amount_minor == *amount && c.incurred_on == date && c.category == other => tally.unchanged += 1,
                    Some(c) => {
                        let am = campaign_cost::ActiveModel {
                            category: Set(other.to_owned()),
                            amount_minor: Set(*amount),
                            incurred_on: Set(date),
                            updated_at: Set(now),
                            ..Default::default()
                        };
                        update_row::<campaign_cost::Entity>(db, ws, c.id, am).await?;
                        tally.updated += 1;
                    }
                }
            }
            (_, Some(c)) => {
                campaign_cost::Entity::delete_many()
                    .filter(campaign_cost::Column::WorkspaceId.eq(ws))
                    .filter(campaign_cost::Column::Id.eq(c.id))
                    .exec(db)
                    .await?;
                tally.removed += 1;
            }
            (_, None) => {}
        }
    }
    for r in &d.costs {
        let campaign_id = ids.campaigns[&r.campaign_id];
        let line = (campaign_id, r.date, r.category.clone(), r.amount, r.note.clone());
        match stored_lines.get_mut(&line) {
            Some(n) if *n > 0 => {
                *n -= 1;
                tally.unchanged += 1;
            }
            _ => {
                let row = [
                    ws.into(),
                    campaign_id.into(),
                    text(&r.category),
                    r.amount.into(),
                    r.date.into(),
                    r.note.clone().into(),
                    ts(now),
                    ts(now),
                ];
                ins.push(db, row).await?;
            }
        }
    }
    tally.new = ins.finish(db).await?.0;
    Ok(tally)
}

/// Leads and their stage history. Returns the tallies of leads and history rows, and how many
/// erased leads were left alone.
async fn write_leads(
    db: &impl ConnectionTrait,
    cx: &Cx<'_>,
    rows: &[LeadRow],
    s: &Stored,
    ids: &mut Ids,
) -> Result<(Tally, Tally, u64), DbErr> {
    const COLUMNS: &[&str] = &[
        "external_id",
        "account_id",
        "email",
        "first_name",
        "last_name",
        "job_title",
        "decision_role",
        "industry",
        "company_size",
        "country",
        "phone",
        "linkedin_url",
        "twitter_handle",
        "facebook_url",
        "street",
        "postal_code",
        "city",
        "consents",
        "lifecycle_status",
        "stage_id",
        "owner_id",
        "converted_at",
        "search_text",
        "created_at",
    ];
    const HISTORY: &[&str] = &["lead_id", "from_stage_id", "to_stage_id", "changed_at", "reason"];
    let (ws, now) = (cx.ws.id, cx.now);
    let funnel = &s.funnel;
    let mut tally = Tally::default();
    let mut erased = 0;
    let ever_mql = match funnel.mql {
        Some(mql)
            if rows
                .iter()
                .any(|r| matches!(r.converted_at, Patch::Set(_)) && s.leads.contains_key(&r.id)) =>
        {
            bulk::leads_ever_in_stage(db, ws, mql).await?
        }
        _ => HashSet::new(),
    };
    let owner = |p: &Patch<String>| p.clone().map(|k| ids.users[&k]);
    let account = |p: &Patch<String>| p.clone().map(|k| ids.accounts[&k]);
    fn history_row(lead: i64, from: Option<i64>, to: i64, at: DateTime<Utc>, reason: &str) -> [Value; 5] {
        [lead.into(), from.into(), to.into(), ts(at), text(reason)]
    }
    let mut history = Vec::new();
    let empty = || Value::Json(Some(Box::new(serde_json::json!({}))));
    let mut ins = Inserter::new("leads", COLUMNS)
        .shared("workspace_id", ws)
        .shared("custom_fields", empty())
        .shared("updated_at", ts(now))
        .returning("external_id");
    // Per new lead: its key and its stage path.
    let mut paths: Vec<(&str, StagePath<'_>)> = Vec::new();
    for r in rows {
        cx.progress.inc(1);
        let Some(cur) = s.leads.get(&r.id) else {
            // Without a stage: MQL when it converted, else where the funnel starts.
            let default = if matches!(r.converted_at, Patch::Set(_)) {
                "MQL"
            } else {
                funnel.first.0.as_str()
            };
            let stage = r.stage.as_deref().unwrap_or(default);
            // Without created_at: now, or when it became an MQL if that is earlier.
            let created = r
                .created_at
                .unwrap_or_else(|| initial(&r.converted_at).map_or(now, |at| at.min(now)));
            let path = if r.history.is_empty() {
                derived_path(&funnel.first.0, stage, created, initial(&r.converted_at))
            } else {
                r.history.iter().map(|(k, t)| (k.as_str(), *t)).collect()
            };
            let current = path.last().map_or(stage, |(k, _)| *k);
            let row = [
                text(&r.id),
                initial(&account(&r.account_id)).into(),
                initial(&r.email).into(),
                initial(&r.first_name).into(),
                initial(&r.last_name).into(),
                initial(&r.job_title).into(),
                initial(&r.decision_role).into(),
                initial(&r.industry).into(),
                initial(&r.company_size).into(),
                initial(&r.country).into(),
                initial(&r.phone).into(),
                initial(&r.linkedin_url).into(),
                initial(&r.twitter_handle).into(),
                initial(&r.facebook_url).into(),
                initial(&r.street).into(),
                initial(&r.postal_code).into(),
                initial(&r.city).into(),
                Value::Json(Some(Box::new(
                    initial(&r.consents).map_or_else(|| serde_json::json!({}), |c| consent_map(&c)),
                ))),
                text(r.lifecycle_status.unwrap_or(LifecycleStatus::Lead).as_str()),
                funnel.ids[current].into(),
                initial(&owner(&r.owner_id)).into(),
                initial(&r.converted_at).into(),
                lead_search_text(
                    initial(&r.email).as_deref(),
                    initial(&r.first_name).as_deref(),
                    initial(&r.last_name).as_deref(),
                )
                .into(),
                ts(created),
            ];
            ins.push(db, row).await?;
            paths.push((r.id.as_str(), path));
            continue;
        };
        if cur.erased_at.is_some() {
            erased += 1;
            continue;
        }
        let mut am = lead::ActiveModel::default();
        let mut dirty = false;
        if cur.external_id.as_deref() != Some(r.id.as_str()) {
            am.external_id = Set(Some(r.id.clone()));
            dirty = true;
        }
        patch_field!(
            am,
            dirty,
            cur,
            r,
            email,
            first_name,
            last_name,
            job_title,
            decision_role,
            industry,
            company_size,
            country,
            phone,
            linkedin_url,
            twitter_handle,
            facebook_url,
            street,
            postal_code,
            city
        );
        let consents = match &r.consents {
            Patch::Keep => None,
            Patch::Clear => Some(serde_json::json!({})),
            Patch::Set(c) => Some(consent_map(c)),
        };
        if let Some(c) = consents.filter(|c| *c != cur.consents) {
            am.consents = Set(c);
            dirty = true;
        }
        if let Some(v) = changed(&account(&r.account_id), &cur.account_id) {
            am.account_id = Set(v);
            dirty = true;
        }
        if let Some(v) = changed(&owner(&r.owner_id), &cur.owner_id) {
            am.owner_id = Set(v);
            dirty = true;
        }
        if let Some(st) = r.lifecycle_status.filter(|st| st.as_str() != cur.lifecycle_status) {
            am.lifecycle_status = Set(st.as_str().to_owned());
            dirty = true;
        }
        if let Some(v) = changed(&r.converted_at, &cur.converted_at) {
            am.converted_at = Set(v);
            dirty = true;
            if let (Some(at), Some(mql)) = (v, funnel.mql)
                && !ever_mql.contains(&cur.id)
            {
                let reason = "converted_at from the import";
                history.push(history_row(cur.id, Some(funnel.first.1), mql, at, reason));
            }
        }
        if let Some(to) = r.stage.as_ref().map(|k| funnel.ids[k]).filter(|to| *to != cur.stage_id) {
            am.stage_id = Set(to);
            dirty = true;
            let reason = "stage changed in the source";
            history.push(history_row(cur.id, Some(cur.stage_id), to, now, reason));
        }
        if dirty {
            am.updated_at = Set(now);
            let current = |v: &sea_orm::ActiveValue<Option<String>>, old: &Option<String>| match v {
                sea_orm::ActiveValue::Set(v) => v.clone(),
                _ => old.clone(),
            };
            let (email, first, last) = (
                current(&am.email, &cur.email),
                current(&am.first_name, &cur.first_name),
                current(&am.last_name, &cur.last_name),
            );
            am.search_text = Set(lead_search_text(email.as_deref(), first.as_deref(), last.as_deref()));
            update_row::<lead::Entity>(db, ws, cur.id, am).await?;
            tally.updated += 1;
        } else {
            tally.unchanged += 1;
        }
    }
    let (n, returned) = ins.finish(db).await?;
    tally.new = n;
    ids.leads = s.leads.iter().map(|(k, m)| (k.clone(), m.id)).collect();
    remember(&mut ids.leads, returned);
    let leads = &ids.leads;
    let new_paths = paths.into_iter().flat_map(|(key, path)| {
        let lead_id = leads[key];
        let mut from = None;
        path.into_iter().enumerate().map(move |(i, (stage, at))| {
            let to = funnel.ids[stage];
            let row = history_row(lead_id, from, to, at, if i == 0 { "created" } else { "imported" });
            from = Some(to);
            row
        })
    });
    // Collected before the await: a lazy chain of closures held across it makes this future
    // not `Send` for every lifetime.
    let rows: Vec<[Value; 5]> = history.into_iter().chain(new_paths).collect();
    let shared = vec![("workspace_id", ws.into()), ("actor", text(ACTOR)), ("created_at", ts(now))];
    let history = Tally {
        new: bulk::insert_all(db, "lead_stage_history", shared, HISTORY, rows.into_iter()).await?,
        ..Tally::default()
    };
    Ok((tally, history, erased))
}

/// New touchpoints (stored external IDs are skipped), then the campaign counters, first touches
/// and e-mail reachability they change.
/// `stored`: external IDs of the touchpoints stored already.
async fn write_touchpoints(
    db: &impl ConnectionTrait,
    cx: &Cx<'_>,
    rows: &[TouchpointRow],
    stored: &HashSet<String>,
    ids: &Ids,
) -> Result<Tally, DbErr> {
    const COLUMNS: &[&str] = &["external_id", "lead_id", "campaign_id", "touch_type", "occurred_at"];
    let (ws, now) = (cx.ws.id, cx.now);
    let mut campaigns: HashSet<i64> = HashSet::new();
    let mut leads: HashSet<i64> = HashSet::new();
    let mut unreachable: HashMap<(i64, bool), DateTime<Utc>> = HashMap::new();
    let fresh = rows
        .iter()
        .inspect(|_| cx.progress.inc(1))
        .filter(|r| !stored.contains(&r.id))
        .map(|r| {
            let lead_id = ids.leads[&r.lead_id];
            let campaign_id = r.campaign_id.as_ref().map(|c| ids.campaigns[c]);
            campaigns.extend(campaign_id);
            leads.insert(lead_id);
            let bounced = r.touch_type == "EMAIL_BOUNCED";
            if bounced || r.touch_type == "UNSUBSCRIBED" {
                let at = unreachable.entry((lead_id, bounced)).or_insert(r.occurred_at);
                *at = (*at).max(r.occurred_at);
            }
            [
                text(&r.id),
                lead_id.into(),
                campaign_id.into(),
                text(&r.touch_type),
                ts(r.occurred_at),
            ]
        });
    let shared = vec![("workspace_id", ws.into()), ("created_at", ts(now))];
    let written = bulk::insert_all(db, "touchpoints", shared, COLUMNS, fresh).await?;
    let tally = Tally {
        new: written,
        unchanged: rows.len() as u64 - written,
        ..Tally::default()
    };
    let mut campaigns: Vec<i64> = campaigns.into_iter().collect();
    campaigns.sort_unstable();
    bulk::recount_campaign_touchpoints(db, ws, &campaigns).await?;
    let mut leads: Vec<i64> = leads.into_iter().collect();
    leads.sort_unstable();
    store::lead::refresh_first_touch(db, ws, &leads, now).await?;
    mark_unreachable(db, ws, unreachable).await?;
    Ok(tally)
}

async fn write_opportunities(
    db: &impl ConnectionTrait,
    cx: &Cx<'_>,
    rows: &[OpportunityRow],
    s: &Stored,
    ids: &mut Ids,
) -> Result<Tally, DbErr> {
    const COLUMNS: &[&str] = &[
        "workspace_id",
        "external_id",
        "account_id",
        "name",
        "amount_minor",
        "currency",
        "status",
        "owner_id",
        "expected_close_date",
        "closed_at",
        "created_at",
        "updated_at",
    ];
    let (ws, now) = (cx.ws.id, cx.now);
    let mut tally = Tally::default();
    let owner = |p: &Patch<String>| p.clone().map(|k| ids.users[&k]);
    let mut ins = Inserter::new("opportunities", COLUMNS).returning("external_id");
    for r in rows {
        let account_id = ids.accounts[&r.account_id];
        let Some(cur) = s.opportunities.get(&r.id) else {
            let name = r.name.clone().unwrap_or_else(|| format!("Opportunity {}", r.id));
            let row = [
                ws.into(),
                text(&r.id),
                account_id.into(),
                name.into(),
                r.amount.into(),
                text(r.currency.as_deref().unwrap_or(&cx.ws.currency)),
                text(r.status.as_str()),
                initial(&owner(&r.owner_id)).into(),
                initial(&r.expected_close_date).into(),
                r.closed_at.into(),
                ts(r.created_at),
                ts(now),
            ];
            ins.push(db, row).await?;
            continue;
        };
        let mut am = opportunity::ActiveModel::default();
        let mut dirty = false;
        if cur.account_id != account_id {
            am.account_id = Set(account_id);
            dirty = true;
        }
        if let Some(n) = r.name.as_ref().filter(|n| **n != cur.name) {
            am.name = Set(n.clone());
            dirty = true;
        }
        if cur.amount_minor != r.amount {
            am.amount_minor = Set(r.amount);
            dirty = true;
        }
        if let Some(c) = r.currency.as_ref().filter(|c| **c != cur.currency) {
            am.currency = Set(c.clone());
            dirty = true;
        }
        if cur.status != r.status.as_str() {
            am.status = Set(r.status.as_str().to_owned());
            dirty = true;
        }
        if let Some(v) = changed(&owner(&r.owner_id), &cur.owner_id) {
            am.owner_id = Set(v);
            dirty = true;
        }
        patch_field!(am, dirty, cur, r, expected_close_date);
        if cur.closed_at != r.closed_at {
            am.closed_at = Set(r.closed_at);
            dirty = true;
        }
        if cur.created_at != r.created_at {
            am.created_at = Set(r.created_at);
            dirty = true;
        }
        if dirty {
            am.updated_at = Set(now);
            update_row::<opportunity::Entity>(db, ws, cur.id, am).await?;
            tally.updated += 1;
        } else {
            tally.unchanged += 1;
        }
    }
    let (n, returned) = ins.finish(db).await?;
    tally.new = n;
    ids.opportunities = s.opportunities.iter().map(|(k, m)| (k.clone(), m.id)).collect();
    remember(&mut ids.opportunities, returned);
    Ok(tally)
}

async fn write_contacts(db: &impl ConnectionTrait, cx: &Cx<'_>, rows: &[ContactRow], s: &Stored, ids: &Ids) -> Result<Tally, DbErr> {
    const COLUMNS: &[&str] = &["workspace_id", "opportunity_id", "lead_id", "role", "is_primary", "created_at"];
    let (ws, now) = (cx.ws.id, cx.now);
    let mut tally = Tally::default();
    let mut ins = Inserter::new("opportunity_contacts", COLUMNS);
    for r in rows {
        let (o, l) = (ids.opportunities[&r.opportunity_id], ids.leads[&r.lead_id]);
        let Some(cur) = s.contacts.get(&(o, l)) else {
            let row = [
                ws.into(),
                o.into(),
                l.into(),
                text(&r.role),
                r.is_primary.unwrap_or(false).into(),
                ts(now),
            ];
            ins.push(db, row).await?;
            continue;
        };
        let mut am = opportunity_contact::ActiveModel::default();
        let mut dirty = false;
        if cur.role != r.role {
            am.role = Set(r.role.clone());
            dirty = true;
        }
        if let Some(primary) = r.is_primary.filter(|p| *p != cur.is_primary) {
            am.is_primary = Set(primary);
            dirty = true;
        }
        if dirty {
            update_row::<opportunity_contact::Entity>(db, ws, cur.id, am).await?;
            tally.updated += 1;
        } else {
            tally.unchanged += 1;
        }
    }
    tally.new = ins.finish(db).await?.0;
    Ok(tally)
}

/// EMAIL_BOUNCED and UNSUBSCRIBED touchpoints mark when a lead stopped being reachable by
/// e-mail (as recording them through the API does): the latest one wins.
async fn mark_unreachable(db: &impl ConnectionTrait, ws: i64, latest: HashMap<(i64, bool), DateTime<Utc>>) -> Result<(), DbErr> {
    let mut items: Vec<_> = latest.into_iter().collect();
    items.sort_unstable_by_key(|((lead, bounce), _)| (*lead, *bounce));
    for ((lead_id, bounce), at) in items {
        let column = if bounce {
            lead::Column::EmailBouncedAt
        } else {
            lead::Column::UnsubscribedAt
        };
        lead::Entity::update_many()
            .col_expr(column, Expr::value(at))
            .filter(lead::Column::WorkspaceId.eq(ws))
            .filter(lead::Column::Id.eq(lead_id))
            .filter(sea_orm::Condition::any().add(column.is_null()).add(column.lt(at)))
            .exec(db)
            .await?;
    }
    Ok(())
}

trait Resolve<T> {
    /// The value after applying the patch to `current`.
    fn resolve(self, current: Option<T>) -> Option<T>;
}

impl<T> Resolve<T> for Patch<T> {
    fn resolve(self, current: Option<T>) -> Option<T> {
        match self {
            Patch::Keep => current,
            Patch::Clear => None,
            Patch::Set(v) => Some(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use sea_orm::Statement;

    use super::*;

    /// A fresh directory under the system's temp dir holding the given files.
    fn new(n: u64) -> Tally {
        Tally {
            new: n,
            ..Tally::default()
        }
    }

    fn unchanged(n: u64) -> Tally {
        Tally {
            unchanged: n,
            ..Tally::default()
        }
    }

    fn fixture(name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("closedloop-import-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (file, text) in files {
            std::fs::write(dir.join(file), text).unwrap();
        }
        dir
    }

    const ACCOUNTS_CSV: &str = "id,name,industry,employee_count,country,ignored\n\
        a1,Hydro Werke GmbH,Machine building,240,de,x\n\
        a2,\"Presses, Lyon SAS\",Automotive,80,FR,y\n";
    const CAMPAIGNS_CSV: &str = "name,id,channel,start_date,end_date,cost,expected_revenue\n\
        Whitepaper,c1,content,2025-01-10,2025-03-31,1500.50,20000\n\
        Hannover Messe,c2,Trade Fair,2025-03-31,2025-04-04,,\n";
    const COSTS_CSV: &str = "campaign_id,date,category,amount,note\n\
        c2,2025-03-01,tickets,0.10,booth\n\
        c2,2025-03-02,PRODUCTION,0.20,\n";
    const LEADS_CSV: &str = "id,account_id,email,first_name,stage,created_at,converted_at\n\
        l1,a1,Peter@Hydro.example,Peter,SQL,2025-01-15 09:00:00,2025-02-01T10:00:00Z\n\
        l2,a1,,Paula,,2025-01-16 09:00:00,\n\
        l3,a2,marie@presses.example,Marie,mql,2025-02-01 08:00:00,2025-02-03 08:00:00\n";
    const TOUCHPOINTS_CSV: &str = "id,lead_id,campaign_id,type,occurred_at\n\
        t1,l1,c1,whitepaper_download,2025-01-20 10:00:00\n\
        t2,l1,c2,TRADE_FAIR_SCAN,2025-04-01 11:00:00\n\
        t3,l3,c2,meeting,2025-04-02 12:00:00\n\
        t4,l2,,page view,2025-01-17 08:00:00\n";
    const OPPORTUNITIES_CSV: &str = "id,account_id,name,amount,status,created_at,closed_at\n\
        o1,a1,HydroStat 3000,125000.99,won,2025-04-10 09:00:00,2025-06-30 17:00:00\n\
        o2,a2,,9999,open,2025-05-01 09:00:00,\n";
    const CONTACTS_CSV: &str = "opportunity_id,lead_id,role,is_primary\n\
        o1,l1,Decision maker,true\n\
        o1,l2,Technical evaluator,false\n";

    fn all_files() -> Vec<(&'static str, &'static str)> {
        vec![
            (ACCOUNTS, ACCOUNTS_CSV),
            (CAMPAIGNS, CAMPAIGNS_CSV),
            (COSTS, COSTS_CSV),
            (LEADS, LEADS_CSV),
            (TOUCHPOINTS, TOUCHPOINTS_CSV),
            (OPPORTUNITIES, OPPORTUNITIES_CSV),
            (CONTACTS, CONTACTS_CSV),
        ]
    }

    async fn db() -> Db {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        db.migrate().await.unwrap();
        db
    }

    async fn int(db: &Db, sql: &str) -> i64 {
        let row = db
            .conn
            .query_one_raw(Statement::from_string(db.backend(), sql.to_owned()))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index::<Option<i64>>(0).unwrap().unwrap_or(0)
    }

    /// Row counts of every table an import writes.
    async fn table_counts(db: &Db) -> Vec<i64> {
        let mut out = Vec::new();
        for t in [
            "workspaces",
            "users",
            "accounts",
            "campaigns",
            "campaign_costs",
            "leads",
            "lead_stage_history",
            "touchpoints",
            "opportunities",
            "opportunity_contacts",
        ] {
            out.push(int(db, &format!("SELECT COUNT(*) FROM {t}")).await);
        }
        out
    }

    #[tokio::test]
    async fn imports_a_small_directory() {
        let db = db().await;
        let dir = fixture("small", &all_files());
        let report = run(&db, &dir, "hydraulik").await.unwrap();
        assert_eq!(report.counts.accounts, new(2), "{report}");
        assert_eq!(report.counts.touchpoints, new(4), "{report}");
        assert_eq!(table_counts(&db).await, vec![1, 0, 2, 2, 3, 3, 6, 4, 2, 2]);

        // Money is exact: 1500.50 (cost column, OTHER) + 0.10 + 0.20.
        assert_eq!(int(&db, "SELECT SUM(amount_minor) FROM campaign_costs").await, 150_080);
        assert_eq!(
            int(
                &db,
                "SELECT COUNT(*) FROM campaign_costs WHERE category = 'OTHER' AND incurred_on = '2025-01-10'"
            )
            .await,
            1
        );
        assert_eq!(int(&db, "SELECT SUM(amount_minor) FROM opportunities").await, 12_500_099 + 999_900);
        assert_eq!(
            int(&db, "SELECT expected_revenue_minor FROM campaigns WHERE external_id = 'c1'").await,
            2_000_000
        );
        assert_eq!(int(&db, "SELECT COUNT(*) FROM campaigns WHERE kind = 'ACQUISITION'").await, 2);
        assert_eq!(
            int(
                &db,
                "SELECT COUNT(*) FROM opportunities WHERE currency = 'EUR' AND name = 'Opportunity o2'"
            )
            .await,
            1
        );
        // Counters: c1 has one touchpoint, c2 two.
        assert_eq!(int(&db, "SELECT touchpoint_count FROM campaigns WHERE external_id = 'c1'").await, 1);
        assert_eq!(int(&db, "SELECT touchpoint_count FROM campaigns WHERE external_id = 'c2'").await, 2);
        // Normalized values.
        assert_eq!(int(&db, "SELECT COUNT(*) FROM leads WHERE email = 'peter@hydro.example'").await, 1);
        assert_eq!(int(&db, "SELECT COUNT(*) FROM accounts WHERE country = 'DE'").await, 1);
        assert_eq!(
            int(
                &db,
                "SELECT COUNT(*) FROM touchpoints WHERE touch_type = 'PAGE_VIEW' AND campaign_id IS NULL"
            )
            .await,
            1
        );
        // Stage history: l1 LEAD -> MQL at converted_at -> SQL; l2 LEAD; l3 LEAD -> MQL.
        let path = |lead: &str| {
            format!(
                "SELECT COUNT(*) FROM lead_stage_history h JOIN leads l ON l.id = h.lead_id \
                 JOIN funnel_stages s ON s.id = h.to_stage_id WHERE l.external_id = '{lead}' AND h.actor = 'import'"
            )
        };
        assert_eq!(int(&db, &path("l1")).await, 3);
        assert_eq!(int(&db, &path("l2")).await, 1);
        assert_eq!(int(&db, &path("l3")).await, 2);
        let stage_of =
            |lead: &str| format!("SELECT s.position FROM leads l JOIN funnel_stages s ON s.id = l.stage_id WHERE l.external_id = '{lead}'");
        assert_eq!(int(&db, &stage_of("l1")).await, 2, "SQL");
        assert_eq!(int(&db, &stage_of("l2")).await, 0, "LEAD by default");
        assert_eq!(int(&db, &stage_of("l3")).await, 1, "MQL");
        assert_eq!(int(&db, "SELECT COUNT(*) FROM leads WHERE converted_at IS NOT NULL").await, 2);
        assert_eq!(
            int(
                &db,
                "SELECT COUNT(*) FROM lead_stage_history h JOIN funnel_stages s ON s.id = h.to_stage_id \
                 WHERE s.key = 'MQL' AND h.changed_at = (SELECT converted_at FROM leads WHERE id = h.lead_id)"
            )
            .await,
            2
        );
        assert_eq!(int(&db, "SELECT COUNT(*) FROM opportunity_contacts WHERE is_primary").await, 1);
        // Every new row of a followed table is a CREATED change, numbered 1, 2, 3, ... by import.
        let rows = int(
            &db,
            "SELECT (SELECT COUNT(*) FROM accounts) + (SELECT COUNT(*) FROM campaigns) + (SELECT COUNT(*) FROM campaign_costs) \
             + (SELECT COUNT(*) FROM leads) + (SELECT COUNT(*) FROM touchpoints) + (SELECT COUNT(*) FROM opportunities) \
             + (SELECT COUNT(*) FROM opportunity_contacts)",
        )
        .await;
        assert_eq!(report.counts.changes as i64, rows, "{report}");
        assert_eq!(
            int(&db, "SELECT COUNT(*) FROM changes WHERE kind = 'CREATED' AND actor = 'import'").await,
            rows
        );
        // Then the ledger's: the won deal's credits under each of the 8 models.
        let won = int(&db, "SELECT COUNT(*) FROM opportunities WHERE status = 'WON'").await;
        assert_eq!(
            int(&db, "SELECT COUNT(*) FROM changes WHERE kind = 'CREDITS_CHANGED'").await,
            8 * won
        );
        assert_eq!(int(&db, "SELECT MAX(seq) FROM changes").await, rows + 8 * won);
    }

    #[tokio::test]
    async fn a_second_run_changes_nothing_and_a_changed_field_is_updated() {
        let db = db().await;
        let dir = fixture("rerun", &all_files());
        run(&db, &dir, "hydraulik").await.unwrap();
        let before = table_counts(&db).await;
        let updated_at = int(&db, "SELECT COUNT(DISTINCT updated_at) FROM leads").await;
        let changes = int(&db, "SELECT COUNT(*) FROM changes").await;
        let report = run(&db, &dir, "hydraulik").await.unwrap();
        assert_eq!(report.counts.written(), 0, "{report}");
        assert_eq!(
            (report.counts.changes, int(&db, "SELECT COUNT(*) FROM changes").await),
            (0, changes)
        );
        assert_eq!(report.counts.touchpoints, unchanged(4), "{report}");
        assert_eq!(table_counts(&db).await, before);
        assert_eq!(int(&db, "SELECT COUNT(DISTINCT updated_at) FROM leads").await, updated_at);
        assert_eq!(int(&db, "SELECT SUM(touchpoint_count) FROM campaigns").await, 3);
        assert_eq!(int(&db, "SELECT SUM(amount_minor) FROM campaign_costs").await, 150_080);

        // The source changed a title, a stage and the campaign's cost; a touchpoint is added.
        let leads = LEADS_CSV.replace("l2,a1,,Paula,,", "l2,a1,,Paula,MQL,");
        let campaigns = CAMPAIGNS_CSV.replace("1500.50", "1600");
        let touchpoints = format!("{TOUCHPOINTS_CSV}t5,l2,c1,EMAIL_OPEN,2025-02-01 08:00:00\n");
        let dir = fixture("rerun2", &[(LEADS, &leads), (CAMPAIGNS, &campaigns), (TOUCHPOINTS, &touchpoints)]);
        let report = run(&db, &dir, "hydraulik").await.unwrap();
        let c = &report.counts;
        assert_eq!(
            c.leads,
            Tally {
                updated: 1,
                ..unchanged(2)
            },
            "{report}"
        );
        assert_eq!(
            c.campaign_costs,
            Tally {
                updated: 1,
                ..Tally::default()
            },
            "{report}"
        );
        assert_eq!(c.touchpoints, Tally { new: 1, ..unchanged(4) }, "{report}");
        assert_eq!(int(&db, "SELECT SUM(amount_minor) FROM campaign_costs").await, 160_030);
        assert_eq!(int(&db, "SELECT touchpoint_count FROM campaigns WHERE external_id = 'c1'").await, 2);
        assert_eq!(int(&db, "SELECT COUNT(*) FROM lead_stage_history").await, 7);
        // The feed: the lead and the cost line UPDATED (their versions now 2), the touchpoint CREATED.
        assert_eq!(c.changes, 3, "{report}");
        let after = |kind: &str, entity: &str| {
            format!("SELECT COUNT(*) FROM changes WHERE seq > {changes} AND kind = '{kind}' AND entity = '{entity}'")
        };
        assert_eq!(int(&db, &after("UPDATED", "LEAD")).await, 1);
        assert_eq!(int(&db, &after("UPDATED", "COST_LINE")).await, 1);
        assert_eq!(int(&db, &after("CREATED", "TOUCHPOINT")).await, 1);
        assert_eq!(int(&db, "SELECT version FROM leads WHERE external_id = 'l2'").await, 2);
        assert_eq!(int(&db, "SELECT MAX(version) FROM campaign_costs").await, 2);
    }

    /// The stored time of touchpoint `t` is the stored first touch of lead `l`.
    async fn first_touch_is(db: &Db, l: &str, t: &str) -> bool {
        let sql = format!(
            "SELECT COUNT(*) FROM leads l JOIN touchpoints t ON t.workspace_id = l.workspace_id \
             AND t.occurred_at = l.first_touch_at WHERE l.external_id = '{l}' AND t.external_id = '{t}'"
        );
        int(db, &sql).await == 1
    }

    #[tokio::test]
    async fn first_touches_follow_the_imported_touchpoints() {
        let db = db().await;
        run(&db, &fixture("first", &all_files()), "hydraulik").await.unwrap();
        assert!(first_touch_is(&db, "l1", "t1").await);
        assert!(first_touch_is(&db, "l2", "t4").await);
        assert!(first_touch_is(&db, "l3", "t3").await);
        // An earlier touchpoint of l1 becomes its first touch; a later one of l3 changes nothing.
        let touchpoints = format!("{TOUCHPOINTS_CSV}t5,l1,c1,EMAIL_OPEN,2025-01-16 08:00:00\nt6,l3,c1,EMAIL_OPEN,2025-05-01 08:00:00\n");
        let report = run(&db, &fixture("first2", &[(TOUCHPOINTS, &touchpoints)]), "hydraulik")
            .await
            .unwrap();
        assert_eq!(report.counts.touchpoints, Tally { new: 2, ..unchanged(4) }, "{report}");
        assert!(first_touch_is(&db, "l1", "t5").await);
        assert!(first_touch_is(&db, "l2", "t4").await);
        assert!(first_touch_is(&db, "l3", "t3").await);
    }

    #[tokio::test]
    async fn a_bad_row_is_reported_and_nothing_is_written() {
        let db = db().await;
        let touchpoints = TOUCHPOINTS_CSV.replace("2025-04-01 11:00:00", "2025-04-31 11:00:00");
        let mut files = all_files();
        files[4] = (TOUCHPOINTS, &touchpoints);
        let dir = fixture("bad", &files);
        let err = run(&db, &dir, "hydraulik").await.unwrap_err().to_string();
        assert!(err.contains("nothing was written"), "{err}");
        assert!(
            err.contains("touchpoints.csv line 3, column occurred_at: \"2025-04-31 11:00:00\" is not a timestamp"),
            "{err}"
        );
        assert_eq!(table_counts(&db).await, vec![0; 10]);

        // Problems the database is needed for are reported the same way, all of them.
        let leads = LEADS_CSV.replace("l3,a2,marie@presses.example", "l3,a9,peter@hydro.example");
        let touchpoints = TOUCHPOINTS_CSV.replace("t3,l3,c2,meeting", "t3,l4,c2,coffee");
        files[3] = (LEADS, &leads);
        files[4] = (TOUCHPOINTS, &touchpoints);
        let dir = fixture("bad2", &files);
        let err = run(&db, &dir, "hydraulik").await.unwrap_err().to_string();
        for expected in [
            "leads.csv line 4, column account_id: no account \"a9\"",
            "leads.csv line 4, column email: \"peter@hydro.example\" appears twice (also on line 2)",
            "touchpoints.csv line 4, column lead_id: no lead \"l4\"",
            "touchpoints.csv line 4, column type: \"COFFEE\" is not a touchpoint type",
        ] {
            assert!(err.contains(expected), "{expected:?} missing in {err}");
        }
        assert_eq!(table_counts(&db).await, vec![0; 10]);
    }

    #[tokio::test]
    async fn required_columns_and_values() {
        let db = db().await;
        let dir = fixture(
            "required",
            &[
                (TOUCHPOINTS, "id,lead_id,type\nt1,l1,PAGE_VIEW\n"),
                (
                    OPPORTUNITIES,
                    "id,account_id,amount,status,created_at\no1,a1,12.345,won,2025-01-01 00:00:00\n",
                ),
            ],
        );
        let err = run(&db, &dir, "w").await.unwrap_err().to_string();
        assert!(
            err.contains("touchpoints.csv line 1, column occurred_at: required column is missing"),
            "{err}"
        );
        assert!(
            err.contains("opportunities.csv line 2, column amount: \"12.345\" has more than 2 decimal places"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn the_example_in_the_docs_imports() {
        let db = db().await;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import");
        let report = run(&db, &dir, "example").await.unwrap();
        assert_eq!(report.counts.touchpoints, new(4), "{report}");
        assert_eq!(table_counts(&db).await, vec![1, 1, 2, 2, 3, 3, 6, 4, 2, 3]);
        assert_eq!(
            int(&db, "SELECT SUM(amount_minor) FROM campaign_costs").await,
            150_050 + 4_850_000 + 980_000
        );
        let again = run(&db, &dir, "example").await.unwrap();
        assert_eq!(again.counts.written(), 0, "{again}");
        assert_eq!(again.counts.touchpoints, unchanged(4), "{again}");
    }

    /// The report names the directory, and a checkout's path may hold any word: tests read the
    /// counts, never the absence of a word from the text.
    #[tokio::test]
    async fn a_directory_named_new_and_updated_reimports_unchanged() {
        let db = db().await;
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import");
        let files: Vec<(String, String)> = std::fs::read_dir(&example)
            .unwrap()
            .map(|e| {
                let path = e.unwrap().path();
                (
                    path.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read_to_string(&path).unwrap(),
                )
            })
            .collect();
        let files: Vec<(&str, &str)> = files.iter().map(|(f, t)| (f.as_str(), t.as_str())).collect();
        let dir = fixture("new-updated", &files);
        assert_eq!(run(&db, &dir, "example").await.unwrap().counts.touchpoints, new(4));
        let again = run(&db, &dir, "example").await.unwrap();
        assert!(again.to_string().contains("new-updated"), "the report names the directory: {again}");
        assert_eq!(again.counts.written(), 0, "{again}");
        assert_eq!(again.counts.touchpoints, unchanged(4), "{again}");
    }

    #[tokio::test]
    async fn blank_lines_bom_and_defaults() {
        let db = db().await;
        let dir = fixture(
            "blank",
            &[(LEADS, "\u{feff}ID,Email,converted_at\n\nl1,A@B.example,2025-01-01 00:00:00\n\n")],
        );
        let report = run(&db, &dir, "w").await.unwrap();
        assert_eq!(report.counts.leads, new(1), "{report}");
        assert_eq!(
            int(
                &db,
                "SELECT COUNT(*) FROM leads WHERE created_at = converted_at AND email = 'a@b.example'"
            )
            .await,
            1
        );
        assert_eq!(int(&db, "SELECT COUNT(*) FROM lead_stage_history").await, 2);
    }

    /// The rejection's text for a directory of the given files, with the default options.
    async fn rejected(name: &str, files: &[(&str, &str)]) -> String {
        let db = db().await;
        let dir = fixture(name, files);
        let err = run(&db, &dir, "w").await.unwrap_err().to_string();
        assert_eq!(table_counts(&db).await, vec![0; 10], "nothing is written: {err}");
        err
    }

    #[tokio::test]
    async fn line_numbers_are_physical_lines_with_crlf_and_multi_line_fields() {
        // CRLF (RFC 4180's line ending): the bad row is on physical line 3.
        let crlf = "id,email,created_at\r\nl1,a@b.example,2025-01-01 00:00:00\r\nl2,c@d.example,yesterday\r\n";
        let err = rejected("crlf", &[(LEADS, crlf)]).await;
        assert!(err.contains("leads.csv line 3, column created_at: \"yesterday\""), "{err}");
        // A quoted field over three lines moves the next record to line 5 (LF and CRLF alike).
        for (name, eol) in [("multi-lf", "\n"), ("multi-crlf", "\r\n")] {
            let text = format!(
                "id,job_title,created_at{eol}l1,\"Head of{eol}Production{eol}and Purchasing\",2025-01-01 00:00:00{eol}l2,x,yesterday{eol}"
            );
            let err = rejected(name, &[(LEADS, &text)]).await;
            assert!(err.contains("leads.csv line 5, column created_at"), "{eol:?}: {err}");
        }
    }

    #[tokio::test]
    async fn rfc_4180_quoting_is_enforced() {
        // An unterminated quote swallows the rest of the file: said as such, where it opened.
        let open = "id,email\nl1,\"a@b.example\nl2,c@d.example\nl3,e@f.example\n";
        let err = rejected("unterminated", &[(LEADS, open)]).await;
        assert!(
            err.contains("leads.csv line 2, column email: the quote opened here is never closed"),
            "{err}"
        );
        assert!(!err.contains("fields"), "{err}");
        // A bare quote inside an unquoted field is refused, and so is text after a closing quote.
        let bare = "id,job_title\nl1,ab\"c\nl2,\"Head\"x\nl3,\"say \"\"hi\"\"\"\n";
        let err = rejected("bare", &[(LEADS, bare)]).await;
        assert!(
            err.contains("leads.csv line 2, column job_title: a quote inside an unquoted field"),
            "{err}"
        );
        assert!(
            err.contains("leads.csv line 3, column job_title: text after the closing quote"),
            "{err}"
        );
        assert!(!err.contains("line 4"), "a doubled quote inside quotes is fine: {err}");
    }

    #[tokio::test]
    async fn a_cell_larger_than_the_limit_is_refused() {
        let big = format!("id,job_title\nl1,{}\nl2,ok\n", "x".repeat(65 * 1024));
        let err = rejected("big-cell", &[(LEADS, &big)]).await;
        assert!(
            err.contains("leads.csv line 2, column job_title: the cell is larger than 64 KiB"),
            "{err}"
        );
        // The limit is an option.
        let db = db().await;
        let dir = fixture("big-cell-ok", &[(LEADS, &big)]);
        let options = Options {
            max_cell_bytes: 128 * 1024,
            ..Options::default()
        };
        let report = run_with(&db, &dir, "w", &options).await.unwrap();
        assert_eq!(report.counts.leads, new(2), "{report}");
    }

    #[tokio::test]
    async fn every_problem_of_every_file_is_reported_in_one_run() {
        // A format problem in leads.csv no longer hides the unknown lead of a touchpoint, nor
        // the duplicate ID; the lead left out for its bad date is not reported as unknown.
        let leads = "id,created_at\nl1,2025-01-01 00:00:00\nl2,someday\nl1,2025-01-02 00:00:00\n";
        let touchpoints = "id,lead_id,type,occurred_at\n\
            t1,l1,PAGE_VIEW,2025-01-03 00:00:00\n\
            t2,L-99,PAGE_VIEW,2025-01-03 00:00:00\n\
            t3,l2,PAGE_VIEW,2025-01-03 00:00:00\n";
        let err = rejected("all", &[(LEADS, leads), (TOUCHPOINTS, touchpoints)]).await;
        for expected in [
            "leads.csv line 3, column created_at: \"someday\"",
            "leads.csv line 4, column id: \"l1\" appears twice",
            "touchpoints.csv line 3, column lead_id: no lead \"L-99\"",
        ] {
            assert!(err.contains(expected), "{expected:?} missing in {err}");
        }
        assert!(!err.contains("no lead \"l2\""), "{err}");
        assert!(err.contains("3 problems"), "{err}");
    }

    #[tokio::test]
    async fn problems_are_capped_with_a_count_of_the_rest() {
        let mut leads = String::from("id,created_at\n");
        for i in 0..10 {
            leads.push_str(&format!("l{i},someday\n"));
        }
        let db = db().await;
        let dir = fixture("capped", &[(LEADS, &leads)]);
        let options = Options {
            max_problems: 3,
            ..Options::default()
        };
        let err = run_with(&db, &dir, "w", &options).await.unwrap_err().to_string();
        assert!(err.contains("10 problems"), "{err}");
        assert!(err.contains("leads.csv line 4,") && !err.contains("leads.csv line 5,"), "{err}");
        assert!(err.ends_with("and 7 more"), "{err}");
    }

    #[tokio::test]
    async fn cost_categories_are_the_workspace_vocabulary() {
        // A CRM's own cost lines: refused without --add-vocabulary, named in the problems...
        let campaigns = "id,name,channel,start_date\nc1,Launch,Podcast,2025-01-01\n";
        let costs = "campaign_id,date,category,amount\n\
            c1,2025-01-02,agency fees,100\n\
            c1,2025-01-03,Venue,200\n\
            c1,2025-01-04,media,50\n";
        let touchpoints = "id,lead_id,type,occurred_at\nt1,l1,podcast_listen,2025-01-05 00:00:00\n";
        let leads = "id\nl1\n";
        let files = [(CAMPAIGNS, campaigns), (COSTS, costs), (LEADS, leads), (TOUCHPOINTS, touchpoints)];
        let err = rejected("categories", &files).await;
        for expected in [
            "campaigns.csv line 2, column channel: \"PODCAST\" is not a channel",
            "campaign_costs.csv line 2, column category: \"AGENCY_FEES\" is not a cost category of this workspace",
            "campaign_costs.csv line 3, column category: \"VENUE\" is not a cost category",
            "touchpoints.csv line 2, column type: \"PODCAST_LISTEN\" is not a touchpoint type",
        ] {
            assert!(err.contains(expected), "{expected:?} missing in {err}");
        }
        assert!(err.contains("4 problems"), "{err}");

        // ...and added, listed in the summary, with --add-vocabulary.
        let db = db().await;
        let dir = fixture("categories-add", &files);
        let options = Options {
            add_vocabulary: true,
            ..Options::default()
        };
        let report = run_with(&db, &dir, "w", &options).await.unwrap();
        let expected = [
            (VOCAB_CHANNEL, "PODCAST"),
            (VOCAB_COST_CATEGORY, "AGENCY_FEES"),
            (VOCAB_COST_CATEGORY, "VENUE"),
            (VOCAB_TOUCHPOINT_TYPE, "PODCAST_LISTEN"),
        ];
        let added: Vec<(&str, &str)> = report.counts.vocabulary.iter().map(|(k, c)| (*k, c.as_str())).collect();
        assert_eq!(added, expected, "{report}");
        assert!(
            report.to_string().contains(
                "added to the vocabularies: channel PODCAST, cost category AGENCY_FEES, cost category VENUE, touchpoint type PODCAST_LISTEN"
            ),
            "{report}"
        );
        assert_eq!(
            int(&db, "SELECT COUNT(*) FROM vocabulary_terms WHERE kind = 'COST_CATEGORY'").await,
            9
        );
        assert_eq!(
            int(&db, "SELECT SUM(amount_minor) FROM campaign_costs WHERE category = 'AGENCY_FEES'").await,
            10_000
        );
        // A second run knows them.
        let again = run(&db, &dir, "w").await.unwrap();
        assert!(again.counts.vocabulary.is_empty() && again.counts.written() == 0, "{again}");
    }

    /// A workspace made before cost categories were a vocabulary gets the defaults and the
    /// categories its cost lines hold.
    #[tokio::test]
    async fn the_migration_gives_older_workspaces_their_cost_categories() {
        use migration::{Migrator, MigratorTrait};
        let db = db().await;
        let dir = fixture(
            "migration",
            &[
                (CAMPAIGNS, "id,name,channel,start_date\nc1,Launch,EMAIL,2025-01-01\n"),
                (COSTS, "campaign_id,date,category,amount\nc1,2025-01-02,MEDIA,1\n"),
            ],
        );
        run(&db, &dir, "w").await.unwrap();
        // Down to before the cost categories: that migration and every later one.
        let undo = Migrator::migrations()
            .iter()
            .rev()
            .position(|m| m.name() == "m20261207_000001_cost_categories")
            .expect("the migration exists")
            + 1;
        Migrator::down(&db.conn, Some(undo as u32)).await.unwrap();
        assert_eq!(
            int(&db, "SELECT COUNT(*) FROM vocabulary_terms WHERE kind = 'COST_CATEGORY'").await,
            0
        );
        db.conn
            .execute_unprepared("UPDATE campaign_costs SET category = 'LEGACY_FEES'")
            .await
            .unwrap();
        Migrator::up(&db.conn, None).await.unwrap();
        assert_eq!(
            int(&db, "SELECT COUNT(*) FROM vocabulary_terms WHERE kind = 'COST_CATEGORY'").await,
            8
        );
        assert_eq!(
            int(
                &db,
                "SELECT COUNT(*) FROM vocabulary_terms WHERE kind = 'COST_CATEGORY' AND code IN ('LEGACY_FEES', 'OTHER')"
            )
            .await,
            2
        );
    }

    #[test]
    fn consent_lists() {
        let codes = parse_codes("email; PHONE|linkedin  EMAIL").unwrap();
        assert_eq!(codes, ["EMAIL", "PHONE", "LINKEDIN"]);
        assert_eq!(
            consent_map(&codes),
            serde_json::json!({ "EMAIL": true, "PHONE": true, "LINKEDIN": true })
        );
        assert!(parse_codes("EMAIL;e.mail").is_err());
    }

    #[test]
    fn timestamps() {
        let t = parse_timestamp("2025-01-15 09:00:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2025-01-15T09:00:00+00:00");
        assert_eq!(parse_timestamp("2025-01-15T10:00:00+01:00").unwrap(), t);
        assert_eq!(parse_timestamp("2025-01-15T09:00:00Z").unwrap(), t);
        assert!(parse_timestamp("2025-02-30 09:00:00").is_err());
        assert!(parse_timestamp("15.01.2025").is_err());
    }

    #[test]
    fn derived_stage_paths() {
        let (c, v) = (
            parse_timestamp("2025-01-01 00:00:00").unwrap(),
            parse_timestamp("2025-02-01 00:00:00").unwrap(),
        );
        assert_eq!(derived_path("LEAD", "SQL", c, None), vec![("SQL", c)]);
        assert_eq!(derived_path("LEAD", "MQL", c, Some(v)), vec![("LEAD", c), ("MQL", v)]);
        assert_eq!(
            derived_path("LEAD", "CUSTOMER", c, Some(v)),
            vec![("LEAD", c), ("MQL", v), ("CUSTOMER", v)]
        );
    }
}
