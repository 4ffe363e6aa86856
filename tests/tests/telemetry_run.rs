//! `ferry run` with a broker: the daemon, started as a process against a real Mosquitto (TLS 1.3,
//! client certificates, the shipped ACL), publishes its descriptor, `online`, sensor readings
//! and decision statistics that a real `mosquitto_sub` receives, and `offline` when stopped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use ferry_tests::harness::{self, cert, repo_root, workspace_binary, Broker, Proc};
use ferry_tests::telemetry::{parse_line, ready_subscriber, DEVICE};

#[test]
fn the_running_agent_publishes_telemetry_that_mosquitto_sub_receives() {
    let broker = Broker::start();
    let sub = ready_subscriber(&broker, "run-telemetry-sub");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\ndevice_id = \"{DEVICE}\"\nboard = \"{}\"\nmodels = \"{}\"\nwarmup_runs = 1\n\
             [api]\ntcp = \"127.0.0.1:0\"\n\
             [mqtt]\nbroker = \"mqtts://127.0.0.1:{}\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n\
             [telemetry]\nspool_dir = \"{}\"\ndecisions_interval_s = 1\n",
            harness::dev_board(dir.path(), &format!("mqtts://127.0.0.1:{}", broker.port)).display(),
            repo_root().join("models").display(),
            broker.port,
            cert("ca.crt").display(),
            cert(&format!("{DEVICE}.crt")).display(),
            cert(&format!("{DEVICE}.key")).display(),
            dir.path().join("spool").display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(workspace_binary("ferry"));
    cmd.args(["run", "--config"]).arg(&config);
    let mut agent = Proc::spawn(cmd, "ferry");
    // The first stdout line says where the API is (after the models are loaded).
    agent.stdout.wait(Duration::from_secs(120), |lines| !lines.is_empty());
    let line = agent.stdout.all().into_iter().next().unwrap_or_default();
    let addr = line.split_whitespace().skip_while(|w| *w != "tcp").nth(1).unwrap_or_default().to_string();
    assert!(line.starts_with("ferry: ready"), "{line}");

    // One request, so that the decision statistics have something to count.
    let digit = std::fs::read(repo_root().join("models/images/digit-7.png")).unwrap();
    let mut s = TcpStream::connect(&addr).unwrap();
    write!(s, "POST /v1/infer/digits HTTP/1.1\r\nHost: f\r\nContent-Type: image/png\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", digit.len()).unwrap();
    s.write_all(&digit).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");

    let topic = |t: &str| format!("ferry/{DEVICE}/telemetry/{t} ");
    let got = sub.stdout.wait(Duration::from_secs(30), |lines| {
        let has = |t: &str| lines.iter().any(|l| l.starts_with(&topic(t)));
        let counted = lines.iter().filter(|l| l.starts_with(&topic("decisions"))).any(|l| parse_line(l).1["data"]["counts"]["local"] == 1);
        has("descriptor") && has("status") && has("sensors") && counted
    });
    assert!(got, "telemetry missing: {:?}", sub.stdout.all());
    let sensors = sub.stdout.all().into_iter().find(|l| l.starts_with(&topic("sensors"))).unwrap();
    let (_, v) = parse_line(&sensors);
    assert_eq!(v["device_id"], DEVICE);
    assert!(v["data"]["cpu.cpu_utilization[all]"].is_number(), "{v}");
    assert!(v["data"]["memory.memory_total"].is_number(), "{v}");

    // A clean stop says `offline`.
    assert!(Command::new("kill").args(["-TERM", &agent.id().to_string()]).status().unwrap().success());
    let offline = sub.stdout.wait(Duration::from_secs(15), |lines| {
        lines.iter().filter(|l| l.starts_with(&topic("status"))).any(|l| parse_line(l).1["data"]["state"] == "offline")
    });
    agent.kill();
    assert!(offline, "no offline status: {:?}", sub.stdout.all());
}
