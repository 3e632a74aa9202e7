//! The host's life: SIGTERM drains what is in flight and exits 0 with everything durable;
//! the terminal link over TLS.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use bursar_e2e::certs::self_signed;
use bursar_e2e::demo::*;
use bursar_e2e::{HostOptions, HostProcess, TestTerminal};
use bytes::Bytes;
use codec::{Field, Message, MessageBuilder, Mti};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

#[test]
fn sigterm_answers_what_was_sent_exits_0_and_keeps_it() {
    let mut host = HostProcess::start(HostOptions::demo());
    let mut t = TestTerminal::connect(host.terminal_addr, TERMINAL, MERCHANT);
    t.sign_on();
    let before = host.balance_minor(STAFF);
    // Twenty purchases in flight, then SIGTERM before reading any answer: whatever the host
    // had taken in is answered before it exits, and every approval is durable.
    for _ in 0..20 {
        let request = t.financial(Mti::FINANCIAL_REQUEST, 0, STAFF, Some(100), None);
        let bytes = t.finish(request);
        t.send_frame(&bytes);
    }
    assert_eq!(host.terminate(), Some(0), "a clean stop exits 0");
    let mut approved = 0;
    while let Some(response) = read_frame(&mut t.stream) {
        assert_eq!(response.get_str(Field::ResponseCode), Some("00"));
        approved += 1;
    }
    eprintln!("{approved} of 20 in-flight purchases answered before the exit");
    host.restart();
    assert_eq!(host.balance_minor(STAFF), before - 100 * approved);
    let (_, check) = host.api("GET", "/v1/ledger/check", None);
    assert_eq!(check["balanced"], true);
}

#[test]
fn every_thread_runs_under_the_configured_cpu_scheduling_policy() {
    const SCHED_OTHER: u32 = 0;
    const SCHED_BATCH: u32 = 3;
    const SCHED_IDLE: u32 = 5;
    // (configuration, every thread's policy, the commit threads' policy and slice in ns)
    for (config, expected, commit, commit_slice) in [
        ("", SCHED_BATCH, SCHED_OTHER, Some(100_000)),
        (
            "[host]\ncommit_thread_slice_us = 0\n",
            SCHED_BATCH,
            SCHED_BATCH,
            None,
        ),
        (
            "[host]\ncpu_scheduling = \"normal\"\ncommit_thread_slice_us = 250\n",
            SCHED_OTHER,
            SCHED_OTHER,
            Some(250_000),
        ),
    ] {
        let host = HostProcess::start(HostOptions {
            config: config.into(),
            ..HostOptions::demo()
        });
        // Traffic first, so that threads started on demand exist too.
        let mut t = TestTerminal::connect(host.terminal_addr, TERMINAL, MERCHANT);
        t.sign_on();
        let threads = thread_policies(host.pid());
        assert!(
            threads.len() > 3,
            "the host runs several threads: {threads:?}"
        );
        for thread in &threads {
            let name = thread.name.as_str();
            let is_commit_thread = name == "ledger-engine" || name == "ledger-wal";
            // Threads a commit thread starts inherit its policy (sled's IO pool, the chunk
            // warmers): the commit threads' or the host's, depending on when they start.
            let started_by_commit = name.starts_with("sled-io") || name.starts_with("ledger-warm");
            // A periodic snapshot is written under SCHED_IDLE (ledger::engine::priority).
            let snapshot_in_background = name == "ledger-snapshot" && thread.policy == SCHED_IDLE;
            let allowed = if is_commit_thread {
                thread.policy == commit
            } else {
                thread.policy == expected
                    || snapshot_in_background
                    || started_by_commit && thread.policy == commit
            };
            assert!(allowed, "thread {name} with {config:?}: {threads:?}");
            if let (true, Some(slice), true) = (is_commit_thread, commit_slice, fair_slices()) {
                assert_eq!(thread.slice_ns, Some(slice), "{name} with {config:?}");
            }
        }
        for commit_thread in ["ledger-engine", "ledger-wal"] {
            assert!(
                threads.iter().any(|t| t.name == commit_thread),
                "{threads:?}"
            );
        }
    }
}

#[test]
fn the_host_runs_the_configured_workers_or_one_per_cpu() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    for (config, workers) in [("", cpus), ("[host]\nworker_threads = 3\n", 3)] {
        let host = HostProcess::start(HostOptions {
            config: config.into(),
            ..HostOptions::demo()
        });
        let mut t = TestTerminal::connect(host.terminal_addr, TERMINAL, MERCHANT);
        assert_eq!(t.sign_on().get_str(Field::ResponseCode), Some("00"));
        let metrics = host.metrics();
        let line = format!("\nbursar_runtime_workers {workers}\n");
        assert!(
            metrics.contains(&line),
            "{config:?}: want{line}in\n{metrics}"
        );
    }
}

#[derive(Debug)]
struct ThreadPolicy {
    name: String,
    policy: u32,
    /// The scheduler's slice for it (`se.slice` in /proc/PID/task/TID/sched), when shown.
    slice_ns: Option<u64>,
}

/// Whether this kernel gives fair threads the slice they ask for (Linux 6.12 and later).
fn fair_slices() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0)) >= (6, 12)
}

/// Each thread of `pid`: its name and scheduling policy (field 41 of /proc/PID/task/TID/stat).
fn thread_policies(pid: u32) -> Vec<ThreadPolicy> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("/proc lists the threads");
    tasks
        .map(|task| {
            let path = task.unwrap().path();
            let stat = std::fs::read_to_string(path.join("stat")).unwrap();
            // The name (field 2) is in parentheses and may hold spaces: count after it.
            let (name, rest) = stat.split_once(" (").unwrap().1.rsplit_once(") ").unwrap();
            let policy = rest.split(' ').nth(41 - 3).unwrap().parse().unwrap();
            let sched = std::fs::read_to_string(path.join("sched")).unwrap_or_default();
            let slice_ns = sched
                .lines()
                .find(|line| line.starts_with("se.slice "))
                .and_then(|line| line.rsplit(':').next()?.trim().parse().ok());
            ThreadPolicy {
                name: name.to_owned(),
                policy,
                slice_ns,
            }
        })
        .collect()
}

/// One framed message, or `None` at the end of the stream.
fn read_frame(stream: &mut impl Read) -> Option<Message> {
    let mut length = [0u8; 2];
    stream.read_exact(&mut length).ok()?;
    let mut body = vec![0u8; u16::from_be_bytes(length) as usize];
    stream.read_exact(&mut body).ok()?;
    Some(Message::parse(Bytes::from(body)).expect("the host sends valid messages"))
}

fn exchange(stream: &mut impl ReadWrite, request: Bytes) -> Message {
    let mut frame = (request.len() as u16).to_be_bytes().to_vec();
    frame.extend_from_slice(&request);
    stream.write_all(&frame).unwrap();
    read_frame(stream).expect("a response")
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

#[test]
fn the_terminal_link_speaks_tls_when_configured() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(certs.path());
    let host = HostProcess::start(HostOptions {
        config: format!(
            "[terminal_link]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            cert.display(),
            key.display()
        ),
        ..HostOptions::demo()
    });
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&cert).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let server = ServerName::try_from("127.0.0.1").unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), server).unwrap();
    let mut tls =
        rustls::StreamOwned::new(connection, TcpStream::connect(host.terminal_addr).unwrap());
    // Build the requests with a plain test terminal's builder, send them over TLS.
    let mut t = TestTerminal::connect(host.terminal_addr, TERMINAL, MERCHANT);
    let sign_on = t.network_request(1, None);
    let response = exchange(&mut tls, t.finish(sign_on));
    assert_eq!(response.get_str(Field::ResponseCode), Some("00"));
    let purchase = t.financial(Mti::FINANCIAL_REQUEST, 0, STAFF, Some(100), None);
    let response = exchange(&mut tls, t.finish(purchase));
    assert_eq!(response.get_str(Field::ResponseCode), Some("00"));
    // A client that does not speak TLS gets nothing it can read and is closed.
    let mut plain = TestTerminal::connect(host.terminal_addr, TERMINAL, MERCHANT);
    assert!(plain
        .try_exchange(MessageBuilder::new(Mti::NETWORK_REQUEST))
        .is_none());
}
