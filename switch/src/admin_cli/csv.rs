//! Just enough CSV for operator files (RFC 4180): a header row naming the columns, fields
//! separated by commas, optionally in double quotes (a quote inside doubled), LF or CRLF.

use std::collections::HashMap;

/// One data row: its line number in the file (1-based, the header is line 1) and its fields
/// by column name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub line: usize,
    pub fields: HashMap<String, String>,
}

impl Row {
    pub fn get(&self, column: &str) -> Option<&str> {
        self.fields
            .get(column)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// A line that could not be read as a row: its number and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    pub line: usize,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub rows: Vec<Row>,
    pub bad: Vec<BadLine>,
}

/// Splits one line into fields, or says why it cannot.
fn split(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (false, '"') if at_start => quoted = true,
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => {
                quoted = false;
                if !matches!(chars.peek(), None | Some(',')) {
                    return Err("text after a closing quote".into());
                }
            }
            (false, ',') => {
                fields.push(std::mem::take(&mut field));
                at_start = true;
                continue;
            }
            (false, '"') => return Err("a quote inside an unquoted field".into()),
            (_, c) => field.push(c),
        }
        at_start = false;
    }
    if quoted {
        return Err("an unclosed quote".into());
    }
    fields.push(field);
    Ok(fields.into_iter().map(|f| f.trim().to_owned()).collect())
}

/// Reads `text`: the header must name every one of `required`; data rows must have as many
/// fields as the header. Blank lines are skipped.
pub fn parse(text: &str, required: &[&str]) -> Result<Table, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')));
    let (_, header) = lines
        .by_ref()
        .find(|(_, l)| !l.trim().is_empty())
        .ok_or("the file is empty: it needs a header row")?;
    let columns =
        split(header.trim_start_matches('\u{feff}')).map_err(|e| format!("header: {e}"))?;
    for name in required {
        if !columns.iter().any(|c| c == name) {
            return Err(format!(
                "the header has no `{name}` column (it needs {})",
                required.join(", ")
            ));
        }
    }
    let mut table = Table {
        rows: Vec::new(),
        bad: Vec::new(),
    };
    for (line, text) in lines.filter(|(_, l)| !l.trim().is_empty()) {
        match split(text) {
            Ok(values) if values.len() == columns.len() => table.rows.push(Row {
                line,
                fields: columns.iter().cloned().zip(values).collect(),
            }),
            Ok(values) => table.bad.push(BadLine {
                line,
                reason: format!(
                    "{} fields where the header has {}",
                    values.len(),
                    columns.len()
                ),
            }),
            Err(reason) => table.bad.push(BadLine { line, reason }),
        }
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_quoted_fields_and_reports_bad_lines() {
        let text = "pan,holder_name\r\n1,\"Li, Wei\"\n\n2,\"say \"\"hi\"\"\"\n3\n4,\"open\n";
        let table = parse(text, &["pan"]).unwrap();
        assert_eq!(table.rows.len(), 2);
        assert_eq!(table.rows[0].get("holder_name"), Some("Li, Wei"));
        assert_eq!(table.rows[1].get("holder_name"), Some("say \"hi\""));
        assert_eq!(table.rows[1].line, 4);
        assert_eq!(table.bad.iter().map(|b| b.line).collect::<Vec<_>>(), [5, 6]);
        assert!(parse("holder_name\n", &["pan"]).is_err());
        assert!(parse("", &["pan"]).is_err());
    }
}
