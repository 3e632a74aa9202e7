//! `bursar-admin` end to end: the real CLI against the real host, bulk files with bad rows.

use std::process::{Command, Output};

use bursar_e2e::demo::ADMIN_TOKEN;
use bursar_e2e::host::bin_path;
use bursar_e2e::{make_pan, HostOptions, HostProcess};

fn cli(host: &HostProcess, token: &str, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new(bin_path("bursar-admin"))
        .arg("--url")
        .arg(host.url(""))
        .arg("--token")
        .arg(token)
        .args(args)
        .env_remove("BURSAR_ADMIN_TOKEN")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start bursar-admin");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.unwrap_or("").as_bytes())
        .unwrap();
    child.wait_with_output().expect("bursar-admin output")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn bulk_issue_from_csv_issues_the_good_rows_and_says_why_the_others_were_not() {
    let host = HostProcess::start(HostOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("pan,holder_name,holder_id,kind,expiry,pin,daily_count\n");
    let mut bad_lines = Vec::new();
    for i in 0..300u64 {
        let line = i as usize + 2;
        let pan = make_pan("629400", i);
        let row = match i {
            10 => format!("{}0,Bad Luhn,S{i},student,3012,,", &pan[..15]),
            20 => format!("{pan},Alum Ni,S{i},alumni,3012,,"),
            30 => format!("{},Twice,S{i},student,3012,,", make_pan("629400", 29)),
            40 => format!("{pan},Too Few,S{i},student"),
            50 => format!("{pan},Month,S{i},student,3013,,"),
            60 => format!("{pan},Count,S{i},student,3012,,many"),
            70 => format!("{pan},\"Li, Wei\",S{i},staff,3012,1234,5"),
            _ => format!("{pan},Student {i},S{i},student,3012,,"),
        };
        if [10, 20, 30, 40, 50, 60].contains(&i) {
            bad_lines.push(line);
        }
        csv.push_str(&row);
        csv.push('\n');
    }
    let file = dir.path().join("intake.csv");
    std::fs::write(&file, csv).unwrap();
    let output = cli(
        &host,
        ADMIN_TOKEN,
        &["issue-csv", file.to_str().unwrap(), "--chunk", "64"],
        None,
    );
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "some rows rejected: {out}");
    assert!(out.contains("issue: 294 of 300 rows done"), "{out}");
    for line in &bad_lines {
        assert!(
            out.contains(&format!("line {line}: ")),
            "line {line} listed: {out}"
        );
    }
    assert!(out.contains("already issued"), "{out}");
    assert!(out.contains("kind `alumni`"), "{out}");
    assert!(
        !out.contains(&make_pan("629400", 20)),
        "PANs are masked in the summary"
    );
    let (status, card) = host.api(
        "GET",
        &format!("/v1/cards/{}", make_pan("629400", 70)),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(card["holder_name"], "Li, Wei");
    assert_eq!(
        (
            card["pin_set"].as_bool(),
            card["limits"]["daily_count"].as_u64()
        ),
        (Some(true), Some(5))
    );
    let (status, _) = host.api(
        "GET",
        &format!("/v1/cards/{}", make_pan("629400", 20)),
        None,
    );
    assert_eq!(status, 404);

    // Run again: every row is now rejected as already issued (or as before), nothing new.
    let again = cli(
        &host,
        ADMIN_TOKEN,
        &["--quiet", "issue-csv", file.to_str().unwrap()],
        None,
    );
    assert!(
        text(&again).contains("issue: 0 of 300 rows done"),
        "{}",
        text(&again)
    );

    let wrong = cli(
        &host,
        "wrong-token-0123456789",
        &["issue-csv", file.to_str().unwrap()],
        None,
    );
    assert_eq!(wrong.status.code(), Some(2), "{}", text(&wrong));
    assert!(text(&wrong).contains("401"));
}

#[test]
fn subsidies_from_csv_are_all_or_nothing_per_batch_and_safe_to_run_again() {
    let host = HostProcess::start(HostOptions::default());
    let pans: Vec<String> = (0..50).map(|i| make_pan("629401", i)).collect();
    for pan in &pans {
        let body = bursar_e2e::admin::card_body(pan, "student", None);
        assert_eq!(host.api("POST", "/v1/cards", Some(body)).0, 201);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("october.csv");
    let unknown = make_pan("629401", 999);
    let write = |rows: &[String]| {
        let mut csv = String::from("pan,amount\n");
        for (i, pan) in rows.iter().enumerate() {
            csv.push_str(&format!("{pan},{}.{:02}\n", 10 + i, i));
        }
        std::fs::write(&file, csv).unwrap();
    };
    let mut rows = pans.clone();
    rows[45] = unknown.clone();
    write(&rows);
    let args = [
        "subsidies-csv",
        file.to_str().unwrap(),
        "--reference",
        "oct-2026",
        "--chunk",
        "20",
    ];
    let output = cli(&host, ADMIN_TOKEN, &args, None);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.contains("subsidies: 40 of 50 rows done"), "{out}");
    assert!(
        out.contains("line 47: ") && out.contains("card is not issued"),
        "{out}"
    );
    assert_eq!(host.balance_minor(&pans[0]), 1000, "batch 1 paid");
    assert_eq!(
        host.balance_minor(&pans[40]),
        0,
        "batch 3 all or nothing: none of it paid"
    );

    rows[45] = pans[45].clone();
    write(&rows);
    let output = cli(&host, ADMIN_TOKEN, &args, None);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(
        out.contains("subsidies: 10 of 50 rows done, 40 already done before, 0 rejected"),
        "{out}"
    );
    assert_eq!(host.balance_minor(&pans[0]), 1000, "batch 1 not paid twice");
    assert_eq!(host.balance_minor(&pans[49]), 5949);

    // A row that is not a subsidy at all: the file is refused before anything is sent.
    std::fs::write(
        &file,
        format!("pan,amount\n{},1.234\n{},5.00\n", pans[0], pans[1]),
    )
    .unwrap();
    let output = cli(
        &host,
        ADMIN_TOKEN,
        &[
            "subsidies-csv",
            file.to_str().unwrap(),
            "--reference",
            "nov",
        ],
        None,
    );
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(
        out.contains("line 2: ") && out.contains("nothing was paid"),
        "{out}"
    );
    assert_eq!(host.balance_minor(&pans[1]), 1101);
}

#[test]
fn single_card_commands() {
    let host = HostProcess::start(HostOptions::default());
    let pan = make_pan("629402", 1);
    let issue = cli(
        &host,
        ADMIN_TOKEN,
        &[
            "issue",
            "--pan",
            &pan,
            "--holder-name",
            "Wang Fang",
            "--holder-id",
            "S42",
            "--kind",
            "student",
            "--expiry",
            "3012",
            "--pin-from-stdin",
        ],
        Some("4321\n"),
    );
    assert_eq!(issue.status.code(), Some(0), "{}", text(&issue));
    let deposit = cli(
        &host,
        ADMIN_TOKEN,
        &["deposit", &pan, "25.00", "cli-1"],
        None,
    );
    assert_eq!(deposit.status.code(), Some(0), "{}", text(&deposit));
    let limits = cli(
        &host,
        ADMIN_TOKEN,
        &[
            "limits",
            &pan,
            "--per-txn",
            "9.99",
            "--daily-count",
            "default",
        ],
        None,
    );
    assert!(
        text(&limits).contains("\"per_txn\": \"9.99\""),
        "{}",
        text(&limits)
    );
    let lost = cli(&host, ADMIN_TOKEN, &["lost", &pan], None);
    assert_eq!(lost.status.code(), Some(0));
    let blacklist = cli(&host, ADMIN_TOKEN, &["blacklist"], None);
    assert!(text(&blacklist).contains(&pan), "{}", text(&blacklist));
    let refused = cli(
        &host,
        ADMIN_TOKEN,
        &["withdraw", &pan, "30.00", "cli-2"],
        None,
    );
    assert_eq!(
        refused.status.code(),
        Some(1),
        "beyond the balance: {}",
        text(&refused)
    );
    assert!(text(&refused).contains("HTTP 409"));
    let bad = cli(&host, "wrong-token-0123456789", &["show", &pan], None);
    assert_eq!(bad.status.code(), Some(1));
    let audit = cli(&host, ADMIN_TOKEN, &["audit"], None);
    assert!(text(&audit).contains("card.limits_set"), "{}", text(&audit));
    assert_eq!(host.balance_minor(&pan), 2500);
}
