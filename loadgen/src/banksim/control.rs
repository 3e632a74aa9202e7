//! The control port: one command per line, one JSON line back.
//!
//! ```text
//! drop <MTI> <N|all|off>      leave the next N requests of MTI unanswered (all: every one)
//! delay <MTI> <ms>            answer requests of MTI only after ms
//! refuse on|off               refuse new connections from the host
//! kill                        close the host's connections now
//! cutover                     send 0800 F70=201 (cutover) to the host
//! echo                        send 0800 F70=301 (echo) to the host
//! balance <account> [minor]   show or set a bank account's balance
//! stats                       counters, requests received, answers to the bank's 0800s
//! ```

use std::sync::Arc;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::Sim;

pub async fn serve(listener: TcpListener, sim: Arc<Sim>) -> anyhow::Result<()> {
    loop {
        let (socket, _) = listener.accept().await?;
        let sim = sim.clone();
        tokio::spawn(async move {
            let (reader, mut writer) = socket.into_split();
            let mut lines = BufReader::new(reader).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let reply = command(&sim, line.trim());
                let mut text = reply.to_string();
                text.push('\n');
                if writer.write_all(text.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
    }
}

fn error(message: impl Into<String>) -> Value {
    json!({ "error": message.into() })
}

pub fn command(sim: &Sim, line: &str) -> Value {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["help"] => {
            json!({ "commands": ["drop <MTI> <N|all|off>", "delay <MTI> <ms>", "refuse on|off", "kill", "cutover", "echo", "balance <account> [minor]", "stats"] })
        }
        ["drop", mti, count] => {
            let remaining = match *count {
                "all" => u64::MAX,
                "off" => 0,
                n => match n.parse() {
                    Ok(n) => n,
                    Err(_) => return error(format!("`{n}` is not a count, all or off")),
                },
            };
            let mut bank = sim.bank.lock().expect("lock");
            bank.rules
                .entry(mti.to_string())
                .or_default()
                .drop_remaining = remaining;
            json!({ "ok": true })
        }
        ["delay", mti, ms] => {
            let Ok(ms) = ms.parse() else {
                return error(format!("`{ms}` is not milliseconds"));
            };
            let mut bank = sim.bank.lock().expect("lock");
            bank.rules.entry(mti.to_string()).or_default().delay_ms = ms;
            json!({ "ok": true })
        }
        ["refuse", state @ ("on" | "off")] => {
            sim.bank.lock().expect("lock").refuse_connections = *state == "on";
            json!({ "ok": true })
        }
        ["kill"] => json!({ "ok": true, "closed": sim.connections.kill_all() }),
        [word @ ("cutover" | "echo")] => {
            let network_code = if *word == "cutover" { 201 } else { 301 };
            let sent = sim
                .connections
                .broadcast(|stan| super::link::network_request(network_code, stan));
            json!({ "ok": sent > 0, "sent": sent })
        }
        ["balance", account] => {
            json!({ "account": account, "balance": sim.bank.lock().expect("lock").balance(account) })
        }
        ["balance", account, minor] => {
            let Ok(minor) = minor.parse() else {
                return error(format!("`{minor}` is not an amount in minor units"));
            };
            sim.bank.lock().expect("lock").set_balance(account, minor);
            json!({ "ok": true })
        }
        ["stats"] => {
            let bank = sim.bank.lock().expect("lock");
            json!({
                "counters": bank.counters,
                "received": bank.received,
                "rules": bank.rules,
                "network_answers": bank.network_answers,
            })
        }
        _ => error(format!("unknown command `{line}`: try `help`")),
    }
}
