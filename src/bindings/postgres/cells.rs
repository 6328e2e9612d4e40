//! Result cells as JSON, the way components-contrib's binding marshals pgx's values: numbers
//! as numbers (`numeric` exactly), text as strings, `json`/`jsonb` as JSON, times as RFC 3339
//! in UTC, `bytea` as base64, `uuid` in its usual form. A column type outside these is an
//! error naming it, never a guess.

use serde_json::Value;
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, Type};

type Failure = Box<dyn std::error::Error + Sync + Send>;

/// One row as an array of its cells, in column order.
pub fn row(row: &Row) -> Result<Value, String> {
    (0..row.len())
        .map(|i| {
            row.try_get::<_, Cell>(i).map(|c| c.0).map_err(|err| {
                let column = &row.columns()[i];
                // tokio-postgres wraps the decoder's error; its cause is the one to tell.
                let cause = std::error::Error::source(&err)
                    .map_or_else(|| err.to_string(), ToString::to_string);
                format!(
                    "column {} ({}): {cause}",
                    column.name(),
                    column.type_().name()
                )
            })
        })
        .collect::<Result<Vec<Value>, String>>()
        .map(Value::Array)
}

struct Cell(Value);

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Cell, Failure> {
        decode(ty, raw).map(Cell)
    }

    fn from_sql_null(_: &Type) -> Result<Cell, Failure> {
        Ok(Cell(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Microseconds from the Unix epoch to PostgreSQL's, 2000-01-01.
const PG_EPOCH_US: i64 = 946_684_800_000_000;

fn decode(ty: &Type, raw: &[u8]) -> Result<Value, Failure> {
    Ok(match *ty {
        Type::BOOL => bool::from_sql(ty, raw)?.into(),
        Type::INT2 => i16::from_sql(ty, raw)?.into(),
        Type::INT4 => i32::from_sql(ty, raw)?.into(),
        Type::INT8 => i64::from_sql(ty, raw)?.into(),
        Type::OID => u32::from_sql(ty, raw)?.into(),
        Type::FLOAT4 => float(f64::from(f32::from_sql(ty, raw)?))?,
        Type::FLOAT8 => float(f64::from_sql(ty, raw)?)?,
        Type::NUMERIC => numeric(raw)?,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            String::from_utf8(raw.to_vec())?.into()
        }
        Type::JSON => serde_json::from_slice(raw)?,
        // jsonb's binary form is a version byte (1), then the text.
        Type::JSONB => serde_json::from_slice(raw.get(1..).unwrap_or_default())?,
        Type::UUID => uuid(raw)?.into(),
        Type::BYTEA => crate::pubsub::envelope::base64(raw).into(),
        Type::TIMESTAMP | Type::TIMESTAMPTZ => micros(i64::from_sql(&Type::INT8, raw)?)?,
        Type::DATE => {
            let days = i64::from(i32::from_sql(&Type::INT4, raw)?);
            micros(days * 86_400_000_000)?
        }
        _ => {
            return Err(format!(
                "type {} is not one daca's bindings.postgresql reads yet; cast it in the query (e.g. `::text`)",
                ty.name()
            )
            .into());
        }
    })
}

fn float(value: f64) -> Result<Value, Failure> {
    // Go's encoding/json refuses NaN and infinities too.
    serde_json::Number::from_f64(value)
        .map(Value::Number)
        .ok_or_else(|| format!("json: unsupported value: {value}").into())
}

fn micros(since_2000: i64) -> Result<Value, Failure> {
    let unix = since_2000
        .checked_add(PG_EPOCH_US)
        .ok_or("timestamp out of range")?;
    let at = jiff::Timestamp::from_microsecond(unix)?;
    Ok(at.to_string().into())
}

fn uuid(raw: &[u8]) -> Result<String, Failure> {
    if raw.len() != 16 {
        return Err("a uuid is 16 bytes".into());
    }
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// `numeric`'s binary form: digit count, weight (of the first base-10000 digit), sign, display
/// scale, then the digits; written out exactly as a JSON number.
fn numeric(raw: &[u8]) -> Result<Value, Failure> {
    let word = |i: usize| -> Result<u16, Failure> {
        raw.get(i..i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "numeric too short".into())
    };
    let (count, weight, sign, scale) = (word(0)?, word(2)? as i16, word(4)?, word(6)?);
    if sign == 0xC000 {
        return Ok("NaN".into());
    }
    let digits = (0..usize::from(count))
        .map(|i| word(8 + 2 * i))
        .collect::<Result<Vec<u16>, _>>()?;
    let digit = |index: i32| {
        usize::try_from(index)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut text = String::new();
    if sign == 0x4000 {
        text.push('-');
    }
    let whole: Vec<String> = (0..=i32::from(weight).max(-1))
        .map(|i| match i {
            0 => digit(0).to_string(),
            _ => format!("{:04}", digit(i)),
        })
        .collect();
    text.push_str(&if whole.is_empty() {
        "0".into()
    } else {
        whole.concat()
    });
    if scale > 0 {
        let groups = (i32::from(scale) + 3) / 4;
        let mut fraction: String = (1..=groups)
            .map(|j| format!("{:04}", digit(i32::from(weight) + j)))
            .collect();
        fraction.truncate(usize::from(scale));
        text.push('.');
        text.push_str(&fraction);
    }
    Ok(serde_json::from_str(&text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_of(count: u16, weight: i16, sign: u16, scale: u16, digits: &[u16]) -> String {
        let mut raw = Vec::new();
        for w in [count, weight as u16, sign, scale].iter().chain(digits) {
            raw.extend_from_slice(&w.to_be_bytes());
        }
        numeric(&raw).unwrap().to_string()
    }

    #[test]
    fn numerics_are_written_out_exactly() {
        assert_eq!(numeric_of(2, 0, 0, 2, &[12, 3400]), "12.34");
        assert_eq!(numeric_of(2, 1, 0, 0, &[1, 0]), "10000");
        assert_eq!(numeric_of(1, -1, 0x4000, 3, &[5000]), "-0.500");
        assert_eq!(numeric_of(1, -2, 0, 6, &[1200]), "0.000012");
        assert_eq!(numeric_of(0, 0, 0, 0, &[]), "0");
        assert_eq!(numeric_of(3, 2, 0, 0, &[1, 2, 3]), "100020003");
    }

    #[test]
    fn times_and_uuids_read_as_go_writes_them() {
        assert_eq!(micros(0).unwrap(), "2000-01-01T00:00:00Z");
        assert_eq!(micros(1_500_000).unwrap(), "2000-01-01T00:00:01.5Z");
        let raw: Vec<u8> = (0u8..16).collect();
        assert_eq!(uuid(&raw).unwrap(), "00010203-0405-0607-0809-0a0b0c0d0e0f");
    }
}
