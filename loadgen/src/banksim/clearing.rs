//! The bank's check of a clearing hand-off (PROTOCOL.md 4.4, 5): the file F48 names exists,
//! its SHA-256 is F48's, its `.sha256` agrees, and its trailer's totals are the 0500's.

use std::path::Path;

use codec::{Field, Message};
use sha2::{Digest, Sha256};

/// `Ok(())` to answer `00`; otherwise why the answer is `95`.
pub fn check(outbox_dir: &Path, request: &Message) -> Result<String, String> {
    let data = request
        .get_str(Field::PrivateData)
        .ok_or("F48 missing: no file named")?;
    let (name, sha_hex) = data.split_once(';').ok_or("F48 is not NAME;SHA256")?;
    if name.contains(['/', '\\']) || !name.starts_with("CLR_") {
        return Err(format!("`{name}` is not a clearing file name"));
    }
    let contents =
        std::fs::read(outbox_dir.join(name)).map_err(|e| format!("cannot read {name}: {e}"))?;
    let actual = hex::encode(Sha256::digest(&contents));
    if actual != sha_hex.to_ascii_lowercase() {
        return Err(format!("{name}: SHA-256 {actual} is not F48's {sha_hex}"));
    }
    let sidecar = std::fs::read_to_string(outbox_dir.join(format!("{name}.sha256")))
        .map_err(|e| format!("cannot read {name}.sha256: {e}"))?;
    if sidecar != format!("{actual}  {name}\n") {
        return Err(format!("{name}.sha256 does not match the file"));
    }
    let text = String::from_utf8(contents).map_err(|_| format!("{name} is not UTF-8"))?;
    let trailer = text
        .lines()
        .find(|line| line.starts_with("T,"))
        .ok_or_else(|| format!("{name} has no trailer"))?;
    let t: Vec<&str> = trailer.split(',').collect();
    if t.len() != 8 {
        return Err(format!("{name}: trailer has {} fields, not 8", t.len()));
    }
    let number = |field: Field| request.get_u64(field).unwrap_or(u64::MAX);
    let expected = [
        (
            t[2],
            number(Field::DebitsCount).to_string(),
            "purchase count (F76)",
        ),
        (
            t[3],
            minor_text(number(Field::DebitsAmount) as i64),
            "purchase amount (F88)",
        ),
        (
            t[4],
            number(Field::CreditsCount).to_string(),
            "refund count (F74)",
        ),
        (
            t[5],
            minor_text(number(Field::CreditsAmount) as i64),
            "refund amount (F86)",
        ),
        (
            t[7],
            net_text(request.get_str(Field::NetSettlement).unwrap_or("")),
            "net (F97)",
        ),
    ];
    for (in_file, in_message, what) in expected {
        if in_file != in_message {
            return Err(format!(
                "{name}: {what} is {in_file} in the file, {in_message} in the 0500"
            ));
        }
    }
    Ok(name.to_owned())
}

fn minor_text(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// F97 `C`/`D` + 16 digits as the file writes the net: `C` (owed to merchants) positive.
fn net_text(f97: &str) -> String {
    let amount: i64 = f97
        .get(1..)
        .and_then(|d| d.parse().ok())
        .unwrap_or(i64::MIN / 2);
    match f97.as_bytes().first() {
        Some(b'C') => minor_text(amount),
        Some(b'D') => minor_text(-amount),
        _ => "?".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_reads_credit_and_debit() {
        assert_eq!(net_text("C0000000000001234"), "12.34");
        assert_eq!(net_text("D0000000000000005"), "-0.05");
        assert_eq!(minor_text(0), "0.00");
    }
}
