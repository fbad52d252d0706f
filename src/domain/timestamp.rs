//! Times as milliseconds since the Unix epoch (how they are stored and indexed) and
//! their RFC 3339 UTC form (how the API shows and accepts them).

use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, macros::format_description};

pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// `2024-01-01T12:00:00.120Z`: always three fractional digits, so the strings sort
/// like the times they name.
pub fn to_rfc3339(ms: i64) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// Accepts an RFC 3339 time (`2024-01-01T12:00:00Z`, any offset) or a bare date
/// (`2024-01-01`, meaning midnight UTC).
pub fn parse(raw: &str) -> Option<i64> {
    let at = OffsetDateTime::parse(raw, &Rfc3339).ok().or_else(|| {
        Date::parse(raw, format_description!("[year]-[month]-[day]"))
            .ok()
            .map(|d| d.midnight().assume_utc())
    })?;
    Some((at.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rfc3339() {
        let ms = parse("2024-01-01T12:00:00.123Z").unwrap();
        assert_eq!(ms, 1_704_110_400_123);
        assert_eq!(to_rfc3339(ms), "2024-01-01T12:00:00.123Z");
        assert_eq!(to_rfc3339(1_704_110_400_120), "2024-01-01T12:00:00.120Z");
        assert_eq!(to_rfc3339(1_704_110_400_000), "2024-01-01T12:00:00.000Z");
    }

    #[test]
    fn accepts_dates_and_offsets() {
        assert_eq!(parse("2024-01-01"), Some(1_704_067_200_000));
        assert_eq!(parse("2024-01-01T02:00:00+02:00"), Some(1_704_067_200_000));
        assert_eq!(parse("yesterday"), None);
    }
}
