//! Harness for the end-to-end tests: start the real `bursar` binary on free loopback ports
//! with its own data directory, and talk to it as a terminal and as an operator would.

pub mod admin;
pub mod banksim;
pub mod certs;
pub mod host;
pub mod offline;
pub mod prom;
pub mod terminal;

pub use host::{HostOptions, HostProcess};
pub use terminal::TestTerminal;

/// The demo data's keys and cards (switch/src/demo.rs, printed in the README).
pub mod demo {
    pub const TPK: &str = "0123456789ABCDEFFEDCBA9876543210";
    pub const TAK: &str = "89ABCDEF0123456776543210FEDCBA98";
    pub const ADMIN_TOKEN: &str = "e2e-test-token-0123456789";
    pub const MERCHANT: &str = "M00000000000001";
    pub const STAFF_MERCHANT: &str = "M00000000000002";
    pub const KIOSK_MERCHANT: &str = "M00000000000009";
    pub const TERMINAL: &str = "T0000001";
    pub const MAC_TERMINAL: &str = "T0000002";
    pub const STAFF_TERMINAL: &str = "T0000003";
    pub const KIOSK: &str = "K0000001";
    /// Student, PIN 1234, 100.00.
    pub const STUDENT: &str = "6290001234567893";
    pub const STUDENT_PIN: &str = "1234";
    /// Staff, PIN 4321, 500.00.
    pub const STAFF: &str = "6290009876543213";
    /// Temporary, PIN 0000, 50.00.
    pub const TEMPORARY: &str = "6290000000000014";
    /// Student, PIN 2468, 20.00.
    pub const STUDENT2: &str = "6290000000000022";
}

/// A Luhn-valid 16-digit PAN from a prefix and a serial number.
pub fn make_pan(prefix: &str, serial: u64) -> String {
    let body = format!("{prefix}{serial:0width$}", width = 15 - prefix.len());
    let check = (0..10u8)
        .find(|d| luhn_valid(&format!("{body}{d}")))
        .expect("one digit completes the sum");
    format!("{body}{check}")
}

pub fn luhn_valid(pan: &str) -> bool {
    let sum: u32 = pan
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = (b - b'0') as u32;
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}
