//! Restoring and verifying format-2 backups built by hand (`support::format2`), not by lifeboat's
//! writer: plain and age-CLI-encrypted objects, missing and wrong keys, cut ciphertext, swapped,
//! dropped and altered objects.

use std::path::Path;

use crate::support::format2::{self, Built, Shape};
use crate::support::*;

/// A fixture, its format-1 backup, and the location they are in.
struct Bench {
    fx: Fixture,
    loc: TestLocation,
    real: String,
    keys: tempfile::TempDir,
}

fn bench(name: &str) -> Bench {
    let fx = fixture(2, 3);
    let loc = TestLocation::new(StoreKind::Local, name);
    let made = ok_json(&lifeboat(
        &[
            "--json",
            "backup",
            "--format",
            "1",
            "--dremio-home",
            fx.home.to_str().unwrap(),
            "--to",
            &loc.url,
        ],
        &[],
    ));
    let real = made["id"].as_str().unwrap().to_string();
    Bench {
        fx,
        loc,
        real,
        keys: tempfile::tempdir().unwrap(),
    }
}

impl Bench {
    fn build(&self, recipients: &[String]) -> Built {
        let built = format2::build(
            &self.loc,
            "dremio",
            &self.real,
            &Shape {
                shared_min: 4096,
                recipients: recipients.to_vec(),
            },
        );
        assert!(
            built.objects.len() >= 4 && built.objects.iter().any(|o| o.kind == "shared"),
            "{} objects",
            built.objects.len()
        );
        built
    }

    fn restore(
        &self,
        id: &str,
        target: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> std::process::Output {
        let mut args = vec![
            "--json",
            "restore",
            "--from",
            &self.loc.url,
            "--backup",
            id,
            "--paths-local",
            target.to_str().unwrap(),
            "--dremio-version",
            &self.fx.version,
        ];
        args.extend_from_slice(extra);
        lifeboat(&args, env)
    }

    fn verify(&self, id: &str, extra: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        let mut args = vec!["--json", "verify", "--from", &self.loc.url, "--backup", id];
        args.extend_from_slice(extra);
        lifeboat(&args, env)
    }

    fn assert_restored(&self, target: &Path) {
        assert_same(&snapshot(&target.join("db")), &snapshot(&self.fx.db), "db");
        assert_same(
            &snapshot(&target.join("pdfs/uploads/_uploads")),
            &snapshot(&self.fx.uploads),
            "uploads",
        );
        assert_same(
            &snapshot(&target.join("security")),
            &snapshot(&self.fx.security),
            "security",
        );
    }
}

/// A folder to restore into (`<dir>/restored`, not there yet): after a refused restore the
/// folder holds nothing at all, no staging folder either.
fn target() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("restored");
    (dir, target)
}

fn untouched(dir: &tempfile::TempDir) {
    assert_eq!(
        names(dir.path()),
        Vec::<String>::new(),
        "something was written"
    );
}

#[test]
fn a_hand_built_format_2_backup_restores_identical_files_and_verifies_in_part() {
    let b = bench("f2-plain");
    let built = b.build(&[]);
    let (_dir, to) = target();
    let restored = ok_json(&b.restore(&built.id, &to, &[], &[]));
    assert_eq!(restored["id"], built.id.as_str());
    b.assert_restored(&to);

    let n = built.objects.len() as u64;
    let full = ok_json(&b.verify(&built.id, &[], &[]));
    assert_eq!(full["ok"], true, "{full}");
    assert_eq!(full["objects_read"], n);
    assert!(full["files_checked"].as_u64().unwrap() > 5, "{full}");
    let half = ok_json(&b.verify(&built.id, &["--read-data-subset", "50%"], &[]));
    assert_eq!(half["ok"], true, "{half}");
    assert_eq!(half["objects"], n);
    assert_eq!(half["objects_read"], n.div_ceil(2), "{half}");
    assert_eq!(half["contents_checked"], true);
    let one = ok_json(&b.verify(&built.id, &["--read-data-subset", "0.1%"], &[]));
    assert_eq!(one["objects_read"], 1, "at least one object is read: {one}");
}

#[test]
fn age_cli_encrypted_objects_restore_with_each_of_two_keys_and_verify_without_one() {
    let b = bench("f2-age");
    let (key_a, a) = format2::keygen(b.keys.path(), "a.txt");
    let (key_b, rb) = format2::keygen(b.keys.path(), "b.txt");
    let built = b.build(&[a, rb]);
    let (_d1, to_a) = target();
    ok_json(&b.restore(
        &built.id,
        &to_a,
        &["--identity", key_a.to_str().unwrap()],
        &[],
    ));
    b.assert_restored(&to_a);
    let (_d2, to_b) = target();
    ok_json(&b.restore(
        &built.id,
        &to_b,
        &[],
        &[("LIFEBOAT_AGE_IDENTITY_FILE", key_b.to_str().unwrap())],
    ));
    b.assert_restored(&to_b);

    let n = built.objects.len() as u64;
    let blind = b.verify(&built.id, &[], &[]);
    let json = ok_json(&blind);
    assert_eq!(json["contents_checked"], false, "{json}");
    assert_eq!(json["objects_read"], n, "{json}");
    let human = lifeboat(
        &["verify", "--from", &b.loc.url, "--backup", &built.id],
        &[],
    );
    assert!(human.status.success(), "{}", stderr(&human));
    assert!(
        stdout(&human).contains("contents were not checked"),
        "{}",
        stdout(&human)
    );
    let keyed = ok_json(&b.verify(
        &built.id,
        &[
            "--identity",
            key_a.to_str().unwrap(),
            "--read-data-subset",
            "50%",
        ],
        &[],
    ));
    assert_eq!(keyed["contents_checked"], true, "{keyed}");
    assert_eq!(keyed["objects_read"], n.div_ceil(2), "{keyed}");
    let full = ok_json(&b.verify(&built.id, &["--identity", key_b.to_str().unwrap()], &[]));
    assert_eq!(full["ok"], true, "{full}");

    // An altered ciphertext fails the verify without a key too.
    let mut altered = built.objects[1].stored.clone();
    let at = altered.len() / 2;
    altered[at] ^= 1;
    b.loc.write(&built.objects[1].key("dremio"), altered);
    let out = b.verify(&built.id, &[], &[]);
    fails_with(&out, 4, &["does not match"]);
    assert!(stdout(&out).contains("object 2 of"), "{}", stdout(&out));
}

#[test]
fn a_missing_or_wrong_key_fails_before_anything_is_written() {
    let b = bench("f2-keys");
    let (_, a) = format2::keygen(b.keys.path(), "a.txt");
    let (other, _) = format2::keygen(b.keys.path(), "other.txt");
    let built = b.build(&[a]);
    let (dir, to) = target();
    let out = b.restore(&built.id, &to, &[], &[]);
    fails_with(&out, 2, &["no identity was given", "--identity FILE"]);
    untouched(&dir);
    let out = b.restore(
        &built.id,
        &to,
        &["--identity", other.to_str().unwrap()],
        &[],
    );
    fails_with(&out, 2, &["none of the identities given can decrypt"]);
    untouched(&dir);
    let out = b.restore(&built.id, &to, &["--dry-run"], &[]);
    fails_with(&out, 2, &["no identity was given"]);
    untouched(&dir);
}

#[test]
fn cut_ciphertext_fails_in_the_header_mid_chunk_and_on_a_chunk_boundary() {
    let b = bench("f2-cut");
    let (key, a) = format2::keygen(b.keys.path(), "a.txt");
    let mut built = b.build(&[a]);
    // The largest object, which must span more than one 64 KiB age chunk.
    let (at, plain_len) = built
        .objects
        .iter()
        .enumerate()
        .map(|(i, o)| (i, format2::frame(&o.raw).len()))
        .max_by_key(|(_, len)| *len)
        .unwrap();
    assert!(
        plain_len > 70_000,
        "the largest object is {plain_len} bytes"
    );
    let whole = built.objects[at].stored.clone();
    let chunks = plain_len.div_ceil(64 << 10);
    let header_end = whole.len() - (plain_len + 16 * chunks);
    for (what, cut) in [
        ("header", 40),
        ("mid-chunk", header_end + 1000),
        ("chunk boundary", header_end + 65536 + 16),
    ] {
        built.objects[at].stored = whole[..cut].to_vec();
        b.loc
            .write(&built.objects[at].key("dremio"), whole[..cut].to_vec());
        built.commit(&b.loc);
        let (dir, to) = target();
        let out = b.restore(&built.id, &to, &["--identity", key.to_str().unwrap()], &[]);
        assert_eq!(out.status.code(), Some(4), "{what}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("object {} of", at + 1)),
            "{what}: {}",
            stderr(&out)
        );
        untouched(&dir);
        let out = b.verify(&built.id, &["--identity", key.to_str().unwrap()], &[]);
        assert_eq!(out.status.code(), Some(4), "{what}: {}", stderr(&out));
    }
}

#[test]
fn swapped_dropped_and_altered_objects_fail_and_the_target_stays_untouched() {
    let b = bench("f2-objects");
    let good = b.build(&[]);
    let n = good.objects.len();
    let refused = |built: &Built, what: &str, fragment: &str| {
        let (dir, to) = target();
        let out = b.restore(&built.id, &to, &[], &[]);
        assert_eq!(out.status.code(), Some(4), "{what}: {}", stderr(&out));
        assert!(stderr(&out).contains(fragment), "{what}: {}", stderr(&out));
        untouched(&dir);
        let out = b.verify(&built.id, &[], &[]);
        assert_eq!(
            out.status.code(),
            Some(4),
            "{what}: verify {}",
            stderr(&out)
        );
    };
    let rebuilt = |f: &dyn Fn(&mut Built)| {
        let mut built = b.build(&[]);
        f(&mut built);
        built.commit(&b.loc);
        built
    };
    // The manifest and SHA256SUMS list a swapped pair: the members come out of order.
    let swapped = rebuilt(&|m| m.objects.swap(1, 2));
    refused(&swapped, "a swapped pair", "does not match");
    // A middle object left out of the list: members are missing.
    let dropped = rebuilt(&|m| {
        m.objects.remove(n / 2);
    });
    refused(&dropped, "a dropped middle object", "does not match");
    // Two objects' contents exchanged under their names: their digests are wrong.
    let exchanged = b.build(&[]);
    let (x, y) = (&exchanged.objects[1], &exchanged.objects[2]);
    b.loc.write(&x.key("dremio"), y.stored.clone());
    b.loc.write(&y.key("dremio"), x.stored.clone());
    refused(&exchanged, "exchanged contents", "object 2 of");
    // The tail gone from the location: nothing is read.
    let tailless = b.build(&[]);
    b.loc.delete(&tailless.objects[n - 1].key("dremio"));
    refused(&tailless, "a missing tail", &format!("object {n} of {n}"));
    // The tail dropped from the list: the manifest is refused.
    let untailed = rebuilt(&|m| {
        m.objects.pop();
    });
    refused(
        &untailed,
        "a dropped tail",
        "the last object is not the tail",
    );
    // SHA256SUMS that does not list the manifest's objects.
    let resummed = b.build(&[]);
    let sums_key = format!("dremio/{}/SHA256SUMS", resummed.id);
    let mut sums = b.loc.read(&sums_key);
    sums[0] = if sums[0] == b'a' { b'b' } else { b'a' };
    b.loc.write(&sums_key, sums);
    refused(&resummed, "altered SHA256SUMS", "SHA256SUMS");
    // The good one still restores.
    let (_dir, to) = target();
    ok_json(&b.restore(&good.id, &to, &[], &[]));
    b.assert_restored(&to);
}
