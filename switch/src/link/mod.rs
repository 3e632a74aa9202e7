//! The host's network links: terminals (server), and later the bank (client).

pub mod respond;
pub mod terminal;
pub mod tls;
