//! Certificates for the TLS tests, made with the openssl command line (installed by
//! scripts/setup.sh): P-256 keys, valid two days, for 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::Command;

fn openssl(args: &[&str], paths: &[&Path]) {
    let output = Command::new("openssl")
        .args(args)
        .args(paths)
        .output()
        .expect("openssl is installed by scripts/setup.sh");
    assert!(output.status.success(), "openssl {args:?}: {output:?}");
}

const NEW_P256_KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
];

/// A self-signed server certificate for 127.0.0.1: `(cert.pem, key.pem)`.
pub fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let mut args = vec!["req", "-x509", "-days", "2", "-subj", "/CN=bursar-test"];
    args.extend(NEW_P256_KEY);
    args.extend(["-addext", "subjectAltName=IP:127.0.0.1"]);
    args.extend(["-addext", "basicConstraints=critical,CA:FALSE"]);
    args.extend(["-addext", "extendedKeyUsage=serverAuth", "-keyout"]);
    openssl(&args, &[&key, Path::new("-out"), &cert]);
    (cert, key)
}

/// A test certificate authority that issues server and client certificates, as a bank
/// running mutual TLS would.
pub struct TestCa {
    dir: PathBuf,
    pub cert: PathBuf,
    key: PathBuf,
}

/// What a certificate is for: its extended key usage.
#[derive(Clone, Copy)]
pub enum Usage {
    Server,
    Client,
}

impl TestCa {
    pub fn new(dir: &Path) -> TestCa {
        let (cert, key) = (dir.join("ca.pem"), dir.join("ca.key"));
        let mut args = vec!["req", "-x509", "-days", "2", "-subj", "/CN=bursar-test-ca"];
        args.extend(NEW_P256_KEY);
        args.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
        args.extend([
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
        ]);
        openssl(&args, &[&key, Path::new("-out"), &cert]);
        TestCa {
            dir: dir.to_owned(),
            cert,
            key,
        }
    }

    /// A certificate named `name` signed by this CA: `(cert.pem, key.pem)`.
    pub fn issue(&self, name: &str, usage: Usage) -> (PathBuf, PathBuf) {
        let file = |ext: &str| self.dir.join(format!("{name}.{ext}"));
        let (cert, key, csr, extensions) = (file("pem"), file("key"), file("csr"), file("ext"));
        let usage = match usage {
            Usage::Server => "serverAuth",
            Usage::Client => "clientAuth",
        };
        std::fs::write(
            &extensions,
            format!(
                "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n\
                 extendedKeyUsage={usage}\n"
            ),
        )
        .expect("write the extensions file");
        let subject = format!("/CN={name}");
        let mut args = vec!["req", "-new", "-subj", &subject];
        args.extend(NEW_P256_KEY);
        args.push("-keyout");
        openssl(&args, &[&key, Path::new("-out"), &csr]);
        openssl(
            &["x509", "-req", "-days", "2", "-CAcreateserial", "-in"],
            &[
                &csr,
                Path::new("-CA"),
                &self.cert,
                Path::new("-CAkey"),
                &self.key,
                Path::new("-extfile"),
                &extensions,
                Path::new("-out"),
                &cert,
            ],
        );
        (cert, key)
    }
}
