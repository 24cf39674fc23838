//! ISO-8601 timestamps the way the real (Python) server writes them:
//! `datetime.isoformat()`, microseconds only when non-zero.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `2026-11-23T20:32:36.508562`: UTC, no offset (the manifest's `updated`).
pub fn utc_naive(t: SystemTime) -> String {
    format_utc(t)
}

/// `2026-04-30T00:00:00+00:00`: UTC with its offset (the manifest's `server_time`).
pub fn utc_with_offset(t: SystemTime) -> String {
    format!("{}+00:00", format_utc(t))
}

/// Nanoseconds since the epoch; times before it count as 0 (a file cannot
/// honestly be that old, and the ETag only needs to change when the file does).
pub fn epoch_nanos(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos()
}

fn format_utc(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = since.as_secs();
    let micros = since.subsec_micros();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let base = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if micros == 0 {
        base
    } else {
        format!("{base}.{micros:06}")
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`), to avoid a date crate for
/// one function.
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

/// Days since 1970-01-01 of (year, month, day) in the proleptic Gregorian
/// calendar: `civil_from_days` the other way (Howard Hinnant's
/// `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(month) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn formats_like_python_isoformat() {
        assert_eq!(utc_naive(at(0, 0)), "1970-01-01T00:00:00");
        // 2026-04-30T00:00:00Z
        assert_eq!(
            utc_with_offset(at(1_777_507_200, 0)),
            "2026-04-30T00:00:00+00:00"
        );
        // 2026-11-23T20:32:36.508562Z, nanoseconds truncated to micros
        assert_eq!(
            utc_naive(at(1_795_465_956, 508_562_999)),
            "2026-11-23T20:32:36.508562"
        );
        // leap day
        assert_eq!(
            utc_naive(at(1_709_164_800, 1_000)),
            "2024-02-29T00:00:00.000001"
        );
    }

    #[test]
    fn days_and_dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn epoch_nanos_is_exact() {
        assert_eq!(
            epoch_nanos(at(1_795_465_955, 625_523_529)),
            1_795_465_955_625_523_529
        );
    }
}
