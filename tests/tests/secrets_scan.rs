//! The suite-wide "no secret in any output" check can fail: a process that prints a test key
//! (as PEM, as one base64 string, or its private scalar in hex) fails the test when its
//! handle drops, naming the key file but not printing the key; a process that prints a
//! certificate, a public key or a key's path does not.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::Command;

use ferry_tests::harness::{make_pki, shared_tempdir, Proc};
use ferry_tests::secrets;

/// Runs `script` with `sh -c` as a [`Proc`], waits for it to finish and drops it; the panic
/// message of the drop, if it panicked.
fn drop_message(script: &str) -> Option<String> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script);
    let proc = Proc::spawn(cmd, "leaky");
    assert!(proc.stdout.wait_eof(), "{script} did not finish");
    catch_unwind(AssertUnwindSafe(move || drop(proc)))
        .err()
        .map(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        })
}

#[test]
fn a_process_that_prints_a_test_key_fails_the_test() {
    let dir = shared_tempdir();
    let certs = dir.path().join("certs");
    make_pki(&certs, &[], &["dev-9"]);
    let key = certs.join("dev-9.key");
    let pem = std::fs::read_to_string(&key).unwrap();
    let needles = secrets::key_needles(&pem);
    // The two PEM body lines that carry the private scalar, and the scalar three ways.
    assert_eq!(needles.len(), 5, "{needles:?}");

    for (how, script) in [
        ("the PEM", format!("echo starting; cat {}", key.display())),
        ("the PEM on stderr", format!("cat {} >&2", key.display())),
        (
            "one base64 string in JSON",
            format!(
                "printf '{{\"key\":\"%s\"}}\\n' \"$(grep -v -- ----- {} | tr -d '\\n')\"",
                key.display()
            ),
        ),
        (
            "the scalar in hex",
            format!("echo 'private: {}'", needles[needles.len() - 2]),
        ),
    ] {
        let message =
            drop_message(&script).unwrap_or_else(|| panic!("{how}: the leak was not caught"));
        assert!(
            message.contains("SECRET LEAKED") && message.contains(&key.display().to_string()),
            "{how}: {message}"
        );
        for n in &needles {
            assert!(
                !message.contains(n.as_str()),
                "{how}: the failure message repeats the secret: {message}"
            );
        }
    }

    // Public material (the certificate, the public key, in PEM and as text) and paths are
    // not secrets.
    let clean = format!(
        "cat {crt}; openssl x509 -in {crt} -noout -text; openssl pkey -in {key} -pubout; echo key {key}; ls -l {dir}",
        crt = certs.join("dev-9.crt").display(),
        key = key.display(),
        dir = certs.display()
    );
    assert_eq!(drop_message(&clean), None);

    // The same check reads any text a test captured.
    let lines = vec!["ok".to_string(), format!("x{}y", needles[0])];
    let found = secrets::leaks(&lines);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].line, 1);
    assert_eq!(found[0].origin, key.display().to_string());
}
