//! Calendar arithmetic without a time-zone database: the host works in one configured UTC
//! offset, which is all a campus needs and keeps business dates deterministic on replay.

use std::time::{SystemTime, UNIX_EPOCH};

use ledger::transfer::BusinessDay;

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A civil date and time of day.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DateTime {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl DateTime {
    /// The civil time of `ms` since the epoch, shifted by `offset_minutes`.
    pub fn from_epoch_ms(ms: u64, offset_minutes: i32) -> DateTime {
        let secs = (ms / 1000) as i64 + offset_minutes as i64 * 60;
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        DateTime {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem / 60 % 60,
            second: rem % 60,
        }
    }

    pub fn business_day(&self) -> BusinessDay {
        BusinessDay(self.year as u32 * 10_000 + self.month * 100 + self.day)
    }

    /// `MMDDhhmmss`, as F7 carries it.
    pub fn mmddhhmmss(&self) -> String {
        format!(
            "{:02}{:02}{:02}{:02}{:02}",
            self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// RFC 3339 with a `Z` (call on a UTC `DateTime`).
    pub fn rfc3339_utc(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    pub fn minutes_of_day(&self) -> u32 {
        self.hour * 60 + self.minute
    }
}

/// Days since 1970-01-01 to (year, month, day): Howard Hinnant's `civil_from_days`.
pub fn civil_from_days(days: i64) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    ((if m <= 2 { y + 1 } else { y }) as i32, m, d)
}

/// (year, month, day) to days since 1970-01-01: Howard Hinnant's `days_from_civil`.
pub fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year } as i64;
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The calendar day after `day`.
pub fn next_day(day: BusinessDay) -> BusinessDay {
    let (y, m, d) = split_day(day);
    let (y, m, d) = civil_from_days(days_from_civil(y, m, d) + 1);
    BusinessDay(y as u32 * 10_000 + m * 100 + d)
}

pub fn split_day(day: BusinessDay) -> (i32, u32, u32) {
    ((day.0 / 10_000) as i32, day.0 / 100 % 100, day.0 % 100)
}

/// `YYYY-MM-DD`.
pub fn iso_date(day: BusinessDay) -> String {
    let (y, m, d) = split_day(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Parses `YYYY-MM-DD` into a business day, checking the calendar.
pub fn parse_iso_date(text: &str) -> Option<BusinessDay> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let y: i32 = text[0..4].parse().ok()?;
    let m: u32 = text[5..7].parse().ok()?;
    let d: u32 = text[8..10].parse().ok()?;
    if !(1..=12).contains(&m) || d == 0 || civil_from_days(days_from_civil(y, m, d)) != (y, m, d) {
        return None;
    }
    Some(BusinessDay(y as u32 * 10_000 + m * 100 + d))
}

/// `MMDD` of a business day, as F15 carries it.
pub fn mmdd(day: BusinessDay) -> String {
    format!("{:04}", day.0 % 10_000)
}

pub fn parse_hh_mm(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for days in [-1_000_000i64, -1, 0, 1, 59, 365, 10_957, 20_779, 1_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
    }

    #[test]
    fn local_time_and_business_day() {
        // 2026-11-22T16:30:00Z is 2026-11-23 00:30 at UTC+8.
        let ms = days_from_civil(2026, 11, 22) as u64 * 86_400_000 + (16 * 3600 + 30 * 60) * 1000;
        let local = DateTime::from_epoch_ms(ms, 480);
        assert_eq!(local.business_day(), BusinessDay(20261123));
        assert_eq!(local.mmddhhmmss(), "1123003000");
        assert_eq!(
            DateTime::from_epoch_ms(ms, 0).rfc3339_utc(),
            "2026-11-22T16:30:00Z"
        );
    }

    #[test]
    fn days_roll_over_months_and_years() {
        assert_eq!(next_day(BusinessDay(20261130)), BusinessDay(20261201));
        assert_eq!(next_day(BusinessDay(20261231)), BusinessDay(20270101));
        assert_eq!(next_day(BusinessDay(20280228)), BusinessDay(20280229));
        assert_eq!(parse_iso_date("2026-02-30"), None);
        assert_eq!(parse_iso_date("2026-11-22"), Some(BusinessDay(20261122)));
        assert_eq!(iso_date(BusinessDay(20261122)), "2026-11-22");
        assert_eq!(mmdd(BusinessDay(20261122)), "1122");
        assert_eq!(parse_hh_mm("23:00"), Some(1380));
        assert_eq!(parse_hh_mm("24:00"), None);
    }
}
