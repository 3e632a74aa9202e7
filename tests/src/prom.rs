//! A strict reader of the Prometheus text exposition format (0.0.4), enough to check that
//! `/metrics` parses the way a Prometheus server would read it, and to look values up.

use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Default)]
pub struct Exposition {
    pub types: HashMap<String, String>,
    pub samples: Vec<Sample>,
}

impl Exposition {
    /// Parses the whole text; any malformed line, a sample before its family's `# TYPE`, a
    /// family typed twice, or a histogram whose buckets do not add up is an error.
    pub fn parse(text: &str) -> Result<Exposition, String> {
        let mut exposition = Exposition::default();
        for (number, line) in text.lines().enumerate() {
            let at = |message: String| format!("line {}: {message}: {line:?}", number + 1);
            if line.is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                let mut words = comment.trim_start().splitn(3, ' ');
                match (words.next(), words.next(), words.next()) {
                    (Some("TYPE"), Some(name), Some(kind)) => {
                        check_name(name).map_err(at)?;
                        if !matches!(
                            kind,
                            "counter" | "gauge" | "histogram" | "summary" | "untyped"
                        ) {
                            return Err(at(format!("unknown type {kind}")));
                        }
                        if exposition
                            .types
                            .insert(name.to_owned(), kind.to_owned())
                            .is_some()
                        {
                            return Err(at(format!("{name} typed twice")));
                        }
                    }
                    (Some("HELP"), Some(name), _) => check_name(name).map_err(at)?,
                    _ => {}
                }
                continue;
            }
            let sample = parse_sample(line).map_err(at)?;
            if exposition.family_type(&sample.name).is_none() {
                return Err(at(format!("{} has no # TYPE before it", sample.name)));
            }
            exposition.samples.push(sample);
        }
        exposition.check_histograms()?;
        Ok(exposition)
    }

    /// The type of the family a sample name belongs to (`x_bucket` belongs to histogram `x`).
    pub fn family_type(&self, sample_name: &str) -> Option<&str> {
        if let Some(kind) = self.types.get(sample_name) {
            return Some(kind);
        }
        ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
            let family = sample_name.strip_suffix(suffix)?;
            match self.types.get(family).map(String::as_str) {
                Some(kind @ ("histogram" | "summary")) => Some(kind),
                _ => None,
            }
        })
    }

    /// The value of the sample with this name and exactly these labels.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == wanted)
            .map(|s| s.value)
    }

    /// As [`Exposition::value`], 0 when the series does not exist yet.
    pub fn value_or_zero(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels).unwrap_or(0.0)
    }

    fn check_histograms(&self) -> Result<(), String> {
        for (family, kind) in &self.types {
            if kind != "histogram" {
                continue;
            }
            // Group buckets by their labels other than `le`.
            let mut series: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
            for sample in self
                .samples
                .iter()
                .filter(|s| s.name == format!("{family}_bucket"))
            {
                let le = sample
                    .labels
                    .get("le")
                    .ok_or(format!("{family} bucket without le"))?;
                let bound = parse_value(le)?;
                let key = sample
                    .labels
                    .iter()
                    .filter(|(k, _)| *k != "le")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                series.entry(key).or_default().push((bound, sample.value));
            }
            for (labels, buckets) in series {
                let mut previous = (f64::NEG_INFINITY, 0.0);
                for &(bound, count) in &buckets {
                    if bound <= previous.0 || count < previous.1 {
                        return Err(format!("{family}{labels:?}: buckets not cumulative"));
                    }
                    previous = (bound, count);
                }
                if previous.0 != f64::INFINITY {
                    return Err(format!("{family}{labels:?}: no +Inf bucket"));
                }
                let label_refs: Vec<(&str, &str)> = labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let count = self.value(&format!("{family}_count"), &label_refs);
                if count != Some(previous.1) {
                    return Err(format!(
                        "{family}{labels:?}: _count {count:?} != +Inf bucket"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A series' labels other than `le`, in order.
type Labels = Vec<(String, String)>;

fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        Ok(())
    } else {
        Err(format!("bad metric name {name:?}"))
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| "no value".to_string())?;
    let name = &line[..name_end];
    check_name(name)?;
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        rest = after_brace;
        loop {
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = rest.find('=').ok_or("label without =")?;
            let key = &rest[..eq];
            check_name(key)?;
            rest = rest[eq + 1..]
                .strip_prefix('"')
                .ok_or("label value not quoted")?;
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, c @ ('\\' | '"'))) => value.push(c),
                        _ => return Err("bad escape in label value".into()),
                    },
                    Some((i, '"')) => break i,
                    Some((_, c)) => value.push(c),
                    None => return Err("unterminated label value".into()),
                }
            };
            if labels.insert(key.to_owned(), value).is_some() {
                return Err(format!("label {key} twice"));
            }
            rest = &rest[end + 1..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
    }
    let mut fields = rest.split_whitespace();
    let value = parse_value(fields.next().ok_or("no value")?)?;
    if let Some(timestamp) = fields.next() {
        timestamp
            .parse::<i64>()
            .map_err(|_| format!("bad timestamp {timestamp}"))?;
    }
    if fields.next().is_some() {
        return Err("trailing text".into());
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => text.parse().map_err(|_| format!("bad value {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_valid_exposition_and_refuses_broken_ones() {
        let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\",y=\"q\\\"\"} 3\n\
                    # TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3.5\nh_count 2\n";
        let parsed = Exposition::parse(good).unwrap();
        assert_eq!(
            parsed.value("a_total", &[("x", "1"), ("y", "q\"")]),
            Some(3.0)
        );
        assert_eq!(parsed.value("h_count", &[]), Some(2.0));
        assert!(Exposition::parse("a_total 1\n").is_err(), "no TYPE");
        assert!(
            Exposition::parse("# TYPE a counter\na{x=1} 1\n").is_err(),
            "unquoted"
        );
        assert!(
            Exposition::parse("# TYPE a counter\na one\n").is_err(),
            "bad value"
        );
        let not_cumulative =
            "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n";
        assert!(Exposition::parse(not_cumulative).is_err());
        let bad_count = "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 1\n";
        assert!(Exposition::parse(bad_count).is_err());
    }
}
