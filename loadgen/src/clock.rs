//! The date and time fields a terminal stamps on its requests (F7, F12, F13), from the
//! system clock, without a date crate: UTC, so F7 is what PROTOCOL.md asks and F12/F13 are
//! the terminal's "local" time in the same zone.

use std::time::{SystemTime, UNIX_EPOCH};

/// F7 (`MMDDhhmmss`), F12 (`hhmmss`) and F13 (`MMDD`) of one moment.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct WireTime {
    pub f7: [u8; 10],
}

impl WireTime {
    pub fn now() -> WireTime {
        WireTime::from_unix(unix_now())
    }

    /// Now on a clock `utc_offset_minutes` ahead of UTC: the local time of a terminal whose
    /// F12/F13 the host reads in its own zone (an offline sale's time, PROTOCOL.md 3.8).
    pub fn local_now(utc_offset_minutes: i32) -> WireTime {
        let secs = unix_now() as i64 + i64::from(utc_offset_minutes) * 60;
        WireTime::from_unix(secs.max(0) as u64)
    }

    pub fn from_unix(secs: u64) -> WireTime {
        let (_, month, day) = civil_from_days((secs / 86_400) as i64);
        let in_day = secs % 86_400;
        let (hour, minute, second) = (in_day / 3600, in_day / 60 % 60, in_day % 60);
        let mut f7 = [0u8; 10];
        for (i, part) in [month as u64, day as u64, hour, minute, second]
            .into_iter()
            .enumerate()
        {
            f7[2 * i] = b'0' + (part / 10) as u8;
            f7[2 * i + 1] = b'0' + (part % 10) as u8;
        }
        WireTime { f7 }
    }

    /// F12, local time `hhmmss`.
    pub fn local_time(&self) -> &[u8] {
        &self.f7[4..]
    }

    /// F13, local date `MMDD`.
    pub fn local_date(&self) -> &[u8] {
        &self.f7[..4]
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// (year, month 1-12, day 1-31) of a count of days since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, exact for the proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        // 2024-02-29 23:59:58 UTC
        let t = WireTime::from_unix(1_709_251_198);
        assert_eq!(&t.f7, b"0229235958");
        assert_eq!(t.local_time(), b"235958");
        assert_eq!(t.local_date(), b"0229");
        assert_eq!(&WireTime::from_unix(0).f7, b"0101000000");
        // 2000-12-31 12:00:00 UTC
        assert_eq!(&WireTime::from_unix(978_264_000).f7, b"1231120000");
    }
}
