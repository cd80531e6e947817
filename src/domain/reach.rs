//! Reach (which leads can be contacted on which channel) and e-mail campaign statistics, as
//! defined in `docs/kpis.md`.
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::kpi::ratio;

/// The channels reach is reported for, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReachChannel {
    Email,
    Phone,
    Linkedin,
    Twitter,
    Facebook,
    Postal,
}

impl ReachChannel {
    pub const ALL: [ReachChannel; 6] = [
        ReachChannel::Email,
        ReachChannel::Phone,
        ReachChannel::Linkedin,
        ReachChannel::Twitter,
        ReachChannel::Facebook,
        ReachChannel::Postal,
    ];

    /// The key of the lead's consent for the channel in `lead.consents`.
    pub fn code(self) -> &'static str {
        match self {
            ReachChannel::Email => "EMAIL",
            ReachChannel::Phone => "PHONE",
            ReachChannel::Linkedin => "LINKEDIN",
            ReachChannel::Twitter => "TWITTER",
            ReachChannel::Facebook => "FACEBOOK",
            ReachChannel::Postal => "POSTAL",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == s)
    }
}

/// What reach needs to know of one lead.
#[derive(Debug, Clone, Default)]
pub struct Contact {
    pub email: bool,
    pub phone: bool,
    pub linkedin: bool,
    pub twitter: bool,
    pub facebook: bool,
    /// Street, postal code and city all present.
    pub postal: bool,
    /// The channels whose consent is `true` in `lead.consents`.
    pub consents: Vec<ReachChannel>,
    pub email_bounced_at: Option<DateTime<Utc>>,
    pub unsubscribed_at: Option<DateTime<Utc>>,
}

impl Contact {
    /// The consent map of a lead: a channel counts when its value is exactly `true` (absent,
    /// `false` or anything else is no consent, or a withdrawn one).
    pub fn consents_of(map: &serde_json::Value) -> Vec<ReachChannel> {
        ReachChannel::ALL
            .into_iter()
            .filter(|c| map.get(c.code()) == Some(&serde_json::Value::Bool(true)))
            .collect()
    }

    /// Whether the lead can be contacted on the channel at `at`: contact data present, consent
    /// given and not withdrawn, and for e-mail neither bounced nor unsubscribed by then.
    pub fn reachable(&self, channel: ReachChannel, at: DateTime<Utc>) -> bool {
        let data = match channel {
            ReachChannel::Email => self.email,
            ReachChannel::Phone => self.phone,
            ReachChannel::Linkedin => self.linkedin,
            ReachChannel::Twitter => self.twitter,
            ReachChannel::Facebook => self.facebook,
            ReachChannel::Postal => self.postal,
        };
        let stopped = |t: Option<DateTime<Utc>>| t.is_some_and(|t| t < at);
        data && self.consents.contains(&channel)
            && !(channel == ReachChannel::Email && (stopped(self.email_bounced_at) || stopped(self.unsubscribed_at)))
    }

    pub fn reachable_channels(&self, at: DateTime<Utc>) -> Vec<ReachChannel> {
        ReachChannel::ALL.into_iter().filter(|c| self.reachable(*c, at)).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelReach {
    pub channel: ReachChannel,
    pub reachable: i64,
    /// reachable / all leads counted, 4 places; `None` when there are no leads.
    pub share: Option<Decimal>,
}

/// Reach per channel at `at` over the given leads (those that existed then).
pub fn reach<'a>(leads: impl IntoIterator<Item = &'a Contact>, at: DateTime<Utc>) -> (i64, Vec<ChannelReach>) {
    let mut total = 0;
    let mut counts = [0i64; ReachChannel::ALL.len()];
    for c in leads {
        total += 1;
        for (i, ch) in ReachChannel::ALL.into_iter().enumerate() {
            if c.reachable(ch, at) {
                counts[i] += 1;
            }
        }
    }
    let rows = ReachChannel::ALL
        .into_iter()
        .zip(counts)
        .map(|(channel, reachable)| ChannelReach {
            channel,
            reachable,
            share: ratio(Decimal::from(reachable), Decimal::from(total)),
        })
        .collect();
    (total, rows)
}

/// An e-mail campaign's statistics over the distinct leads of each kind of touchpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EmailStats {
    /// Leads sent the campaign's e-mail.
    pub sent: i64,
    /// Of them, those whose e-mail did not bounce.
    pub delivered: i64,
    /// Delivered leads that opened (at least once).
    pub unique_opens: i64,
    /// Delivered leads that clicked (at least once).
    pub unique_clicks: i64,
    /// unique opens / delivered.
    pub open_rate: Option<Decimal>,
    /// unique clicks / delivered.
    pub click_rate: Option<Decimal>,
    /// unique clicks / unique opens.
    pub click_to_open_rate: Option<Decimal>,
    /// Opens by mail privacy proxies (Apple Mail Privacy Protection) and scanners: hits of the
    /// campaign's open pixels, kept apart from the leads' opens above.
    pub machine_opens: i64,
    /// Clicks by link scanners on the campaign's tracking links.
    pub machine_clicks: i64,
}

impl EmailStats {
    pub fn new(sent: i64, delivered: i64, unique_opens: i64, unique_clicks: i64) -> Self {
        let d = Decimal::from;
        EmailStats {
            sent,
            delivered,
            unique_opens,
            unique_clicks,
            open_rate: ratio(d(unique_opens), d(delivered)),
            click_rate: ratio(d(unique_clicks), d(delivered)),
            click_to_open_rate: ratio(d(unique_clicks), d(unique_opens)),
            machine_opens: 0,
            machine_clicks: 0,
        }
    }

    /// With the machines' opens and clicks beside the leads' own.
    pub fn with_machine(self, (opens, clicks): (i64, i64)) -> Self {
        EmailStats {
            machine_opens: opens,
            machine_clicks: clicks,
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn day(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, d, 0, 0, 0).unwrap()
    }

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn contact(email: bool, phone: bool, consents: serde_json::Value) -> Contact {
        Contact {
            email,
            phone,
            consents: Contact::consents_of(&consents),
            ..Contact::default()
        }
    }

    #[test]
    fn consent_is_exactly_true() {
        let c = Contact::consents_of(&serde_json::json!({"EMAIL": true, "PHONE": false, "POSTAL": "yes", "SMS": true}));
        assert_eq!(c, vec![ReachChannel::Email]);
    }

    /// docs/kpis.md, Reach: five leads on 10 March.
    #[test]
    fn worked_example() {
        let mut bounced = contact(true, true, serde_json::json!({"EMAIL": true, "PHONE": true}));
        bounced.email_bounced_at = Some(day(5));
        let mut unsubscribed_later = contact(true, false, serde_json::json!({"EMAIL": true}));
        unsubscribed_later.unsubscribed_at = Some(day(20));
        let leads = [
            // A: e-mail and phone with both consents.
            contact(true, true, serde_json::json!({"EMAIL": true, "PHONE": true})),
            // B: e-mail bounced on 5 March; phone still fine.
            bounced,
            // C: unsubscribes only on 20 March.
            unsubscribed_later,
            // D: a phone number but no consent for it.
            contact(false, true, serde_json::json!({"PHONE": false})),
            // E: consent without the data.
            contact(false, false, serde_json::json!({"EMAIL": true, "LINKEDIN": true})),
        ];
        let (total, rows) = reach(&leads, day(10));
        assert_eq!(total, 5);
        let get = |ch| rows.iter().find(|r| r.channel == ch).unwrap().clone();
        assert_eq!(
            (get(ReachChannel::Email).reachable, get(ReachChannel::Email).share),
            (2, Some(dec("0.4000")))
        );
        assert_eq!(
            (get(ReachChannel::Phone).reachable, get(ReachChannel::Phone).share),
            (2, Some(dec("0.4000")))
        );
        assert_eq!(get(ReachChannel::Linkedin).reachable, 0);
        assert_eq!(get(ReachChannel::Linkedin).share, Some(dec("0.0000")));
        // After 20 March C is gone from e-mail too.
        let (_, later) = reach(&leads, day(21));
        assert_eq!(later[0].reachable, 1);
        assert_eq!(reach(&[], day(1)).1[0].share, None);
    }

    /// docs/kpis.md, e-mail statistics: 200 sent, 10 bounced, 57 opened, 19 clicked.
    #[test]
    fn email_rates() {
        let s = EmailStats::new(200, 190, 57, 19);
        assert_eq!(s.open_rate, Some(dec("0.3000")));
        assert_eq!(s.click_rate, Some(dec("0.1000")));
        assert_eq!(s.click_to_open_rate, Some(dec("0.3333")));
        assert_eq!(EmailStats::new(0, 0, 0, 0).open_rate, None);
    }
}
