//! Human durations: `90s`, `90m`, `8h`, `2d`, `1h30m`.
use chrono::Duration;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid duration `{input}`: {why} (examples: 90m, 8h, 2d, 1h30m)")]
pub struct DurationError {
    pub input: String,
    pub why: &'static str,
}

/// Parse a duration made of `<number><unit>` parts, units `s`, `m`, `h`, `d`, `w`.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let err = |why| DurationError {
        input: input.to_string(),
        why,
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("empty"));
    }
    let mut total: i64 = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if digits.is_empty() {
            return Err(err("a unit must follow a number"));
        }
        let n: i64 = digits.parse().map_err(|_| err("number too large"))?;
        digits.clear();
        let unit: i64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(err("unknown unit (use s, m, h, d or w)")),
        };
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| err("too large"))?;
    }
    if !digits.is_empty() {
        return Err(err("missing unit after the last number"));
    }
    if total == 0 {
        return Err(err("must be longer than zero"));
    }
    // Cap at 10 years, far above any policy, so arithmetic on timestamps cannot overflow.
    if total > 10 * 365 * 86_400 {
        return Err(err("too large"));
    }
    Ok(Duration::seconds(total))
}

/// Format a duration compactly (`2d3h`, `45m`, `10s`).
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.num_seconds();
    if secs <= 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("90m"), Ok(Duration::minutes(90)));
        assert_eq!(parse_duration("8h"), Ok(Duration::hours(8)));
        assert_eq!(parse_duration("2d"), Ok(Duration::days(2)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::minutes(90)));
        assert_eq!(parse_duration(" 45s "), Ok(Duration::seconds(45)));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "h", "8", "8x", "0h", "-1h", "99999999999999999999d", "5000w"] {
            assert!(parse_duration(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn formats() {
        assert_eq!(format_duration(Duration::minutes(90)), "1h30m");
        assert_eq!(format_duration(Duration::seconds(0)), "0s");
        assert_eq!(format_duration(Duration::days(2) + Duration::hours(3)), "2d3h");
    }
}
