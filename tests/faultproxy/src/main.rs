//! `faultproxy --upstream http://127.0.0.1:8333 --rule 'slowdown kind=upload-part times=3'`:
//! prints `listening on http://127.0.0.1:PORT`, then reads commands on stdin: `release` lets held
//! requests go, `stats` prints the counts; at end of input it prints the counts and exits.

use std::io::BufRead;

use clap::Parser;
use faultproxy::{Hold, Injection, Proxy, parse_rule};

#[derive(Parser)]
#[command(about = "A fault-injecting proxy in front of an S3 or Azure Blob server, for tests")]
struct Args {
    /// The server, e.g. http://127.0.0.1:8333.
    #[arg(long)]
    upstream: String,
    /// Where to listen (a free port of 127.0.0.1 by default).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// A rule, e.g. `reset-download:4096 kind=get-range nth=2` (repeatable; see the library docs).
    #[arg(long = "rule")]
    rules: Vec<String>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let proxy = match Proxy::start_on(&args.listen, &args.upstream) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("faultproxy: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let mut injections: Vec<(String, Injection)> = Vec::new();
    let mut holds: Vec<Hold> = Vec::new();
    for spec in &args.rules {
        match parse_rule(spec) {
            Ok(rule) => match proxy.add(rule) {
                Ok(injection) => injections.push((spec.clone(), injection)),
                Err(hold) => holds.push(hold),
            },
            Err(e) => {
                eprintln!("faultproxy: rule {spec:?}: {e}");
                return std::process::ExitCode::from(2);
            }
        }
    }
    println!("listening on {}", proxy.url());
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        match line.trim() {
            "release" => holds.iter().for_each(Hold::release),
            "stats" => print_stats(&proxy, &injections),
            "" => {}
            other => eprintln!("faultproxy: unknown command {other:?} (release, stats)"),
        }
    }
    print_stats(&proxy, &injections);
    std::process::ExitCode::SUCCESS
}

fn print_stats(proxy: &Proxy, injections: &[(String, Injection)]) {
    let counts: Vec<String> = proxy
        .counts()
        .iter()
        .map(|(kind, n)| format!("{kind}={n}"))
        .collect();
    println!("forwarded {}", counts.join(" "));
    for (spec, injection) in injections {
        println!(
            "injected {} of {} matched: {spec}",
            injection.count(),
            injection.matched()
        );
    }
}
