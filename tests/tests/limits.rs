//! The terminal link's limits: many connections at once, clients that connect and never
//! send (or send half a frame), the connection limit and the idle timeout.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bursar_e2e::demo::*;
use bursar_e2e::prom::Exposition;
use bursar_e2e::terminal::code;
use bursar_e2e::{HostOptions, HostProcess, TestTerminal};

fn gauge(host: &HostProcess, name: &str) -> f64 {
    Exposition::parse(&host.metrics())
        .expect("metrics parse")
        .value_or_zero(name, &[])
}

/// Reads until the host closes the socket; false if it is still open after `patience`.
fn closed_by_host(stream: &mut TcpStream, patience: Duration) -> bool {
    stream.set_read_timeout(Some(patience)).unwrap();
    let mut buffer = [0u8; 64];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(error) if error.kind() == ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn a_thousand_connections_are_held_open_and_each_is_served() {
    let host = HostProcess::start(HostOptions::demo());
    let mut terminals: Vec<TestTerminal> = (0..1_000)
        .map(|_| TestTerminal::connect(host.terminal_addr, TERMINAL, MERCHANT))
        .collect();
    // Every connection is open at the same time, and each one still gets its answer.
    for terminal in &mut terminals {
        assert_eq!(code(&terminal.network(301, None)), "00");
    }
    assert_eq!(gauge(&host, "bursar_connections_open"), 1_000.0);
    assert_eq!(gauge(&host, "bursar_connections_rejected_total"), 0.0);
    let last = terminals.last_mut().unwrap();
    last.sign_on();
    assert_eq!(code(&last.purchase(STAFF, 100, None)), "00");
}

#[test]
fn silent_and_half_frame_clients_do_not_hurt_others_and_time_out() {
    let host = HostProcess::start(HostOptions {
        config: "[terminal_link]\nmax_connections = 40\nidle_timeout_ms = 1500\n".into(),
        ..HostOptions::demo()
    });
    // 30 clients that connect and never send, 5 that send one byte of a length prefix.
    let mut silent: Vec<TcpStream> = (0..30)
        .map(|_| TcpStream::connect(host.terminal_addr).unwrap())
        .collect();
    let mut half: Vec<TcpStream> = (0..5)
        .map(|_| {
            let mut stream = TcpStream::connect(host.terminal_addr).unwrap();
            stream.write_all(&[0x00]).unwrap();
            stream
        })
        .collect();
    // A real terminal is served as usual meanwhile, request after request.
    let mut t = TestTerminal::connect(host.terminal_addr, TERMINAL, MERCHANT);
    assert_eq!(code(&t.sign_on()), "00");
    for _ in 0..20 {
        assert_eq!(code(&t.purchase(STAFF, 100, None)), "00");
    }
    // 36 of 40 connections are taken: four more fit, the fifth is refused at once.
    let extra: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(host.terminal_addr).unwrap())
        .collect();
    let mut refused = TcpStream::connect(host.terminal_addr).unwrap();
    assert!(
        closed_by_host(&mut refused, Duration::from_secs(10)),
        "the 41st connection is closed"
    );
    assert_eq!(gauge(&host, "bursar_connections_rejected_total"), 1.0);
    // Idle clients are closed by the idle timeout.
    for stream in silent.iter_mut().chain(half.iter_mut()) {
        assert!(
            closed_by_host(stream, Duration::from_secs(20)),
            "an idle connection is closed by the host"
        );
    }
    drop(extra);
    // Their slots are free again.
    let mut again = TestTerminal::connect(host.terminal_addr, TERMINAL, MERCHANT);
    assert_eq!(code(&again.network(301, None)), "00");
}
