//! Tests of [`super`]: both attacks (zip-slip in a zip, a tar and a tar.gz; a
//! zip bomb), links, and good archives rewritten faithfully.

use std::io::{Read, Write};

use proptest::prelude::*;

use super::*;

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o644);
    for (name, data) in entries {
        if name.ends_with('/') {
            w.add_directory(*name, opts).expect("dir");
        } else {
            w.start_file(*name, opts).expect("file");
            w.write_all(data).expect("write");
        }
    }
    w.finish().expect("finish").into_inner()
}

/// A tar with raw names (the tar crate's builder refuses `..` itself).
fn raw_tar(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, t, data) in entries {
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(*t);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        if *t == tar::EntryType::Symlink {
            h.set_link_name("/etc/passwd").expect("link");
        }
        h.set_cksum();
        b.append(&h, *data).expect("append");
    }
    b.into_inner().expect("tar")
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gz");
    e.finish().expect("gz")
}

const ROOM: u64 = 1 << 30;

/// Convert `bytes` of `kind` in a temporary directory: the tar's entries
/// (name, content) on success.
fn convert(bytes: &[u8], kind: Kind) -> Result<Vec<(String, Vec<u8>)>, ArchiveError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("upload");
    std::fs::write(&src, bytes).expect("write");
    let dest = dir.path().join("out.tar");
    let limits = Limits {
        room: ROOM,
        uploaded: bytes.len() as u64,
    };
    to_tar(&src, kind, &dest, limits)?;
    check_tar(&dest)?;
    let mut ar = tar::Archive::new(std::fs::File::open(&dest).expect("open"));
    let mut out = Vec::new();
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        let name = e.path().expect("path").display().to_string();
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("read");
        out.push((name, data));
    }
    assert!(
        !dir.path().join("out.spool").exists(),
        "the spool file stays"
    );
    Ok(out)
}

#[test]
fn formats_are_sniffed() {
    assert_eq!(sniff(&zip_of(&[("a", b"x")])), Some(Kind::Zip));
    assert_eq!(sniff(&zip_of(&[])), Some(Kind::Zip));
    let tar = raw_tar(&[("a", tar::EntryType::Regular, b"x")]);
    assert_eq!(sniff(&tar), Some(Kind::Tar));
    assert_eq!(sniff(&gz(&tar)), Some(Kind::TarGz));
    assert_eq!(sniff(b"<html>"), None);
}

#[test]
fn a_good_zip_becomes_the_same_tar() {
    let zip = zip_of(&[
        ("public/", b""),
        ("public/index.php", b"<?php echo 1;"),
        ("./README", b"hello"),
    ]);
    let entries = convert(&zip, Kind::Zip).expect("converted");
    assert_eq!(
        entries,
        vec![
            ("public".to_owned(), Vec::new()),
            ("public/index.php".to_owned(), b"<?php echo 1;".to_vec()),
            ("README".to_owned(), b"hello".to_vec()),
        ]
    );
}

#[test]
fn a_good_tar_gz_becomes_the_same_tar() {
    let tar = raw_tar(&[
        ("site", tar::EntryType::Directory, b""),
        ("site/a.html", tar::EntryType::Regular, b"<p>a</p>"),
    ]);
    let entries = convert(&gz(&tar), Kind::TarGz).expect("converted");
    assert_eq!(
        entries,
        vec![
            ("site".to_owned(), Vec::new()),
            ("site/a.html".to_owned(), b"<p>a</p>".to_vec()),
        ]
    );
}

#[test]
fn zip_slip_is_refused_in_every_format() {
    for name in [
        "../evil.php",
        "public/../../evil.php",
        "/etc/cron.d/evil",
        "..\\..\\evil.php",
    ] {
        let err = convert(&zip_of(&[("ok.txt", b"ok"), (name, b"x")]), Kind::Zip).expect_err(name);
        assert!(
            matches!(&err, ArchiveError::Unsafe { entry, .. } if entry == name),
            "{name}: {err}"
        );
        assert!(err.to_string().contains("zip-slip"), "{err}");
    }
    let tar = raw_tar(&[("../../evil.php", tar::EntryType::Regular, b"x")]);
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("a.tar");
    std::fs::write(&p, &tar).expect("write");
    let err = check_tar(&p).expect_err("tar slip");
    assert!(err.to_string().contains("zip-slip"), "{err}");
    let err = convert(&gz(&tar), Kind::TarGz).expect_err("tar.gz slip");
    assert!(err.to_string().contains("zip-slip"), "{err}");
}

#[test]
fn links_are_refused() {
    let tar = raw_tar(&[("passwd", tar::EntryType::Symlink, b"")]);
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("a.tar");
    std::fs::write(&p, &tar).expect("write");
    let err = check_tar(&p).expect_err("link");
    assert!(err.to_string().contains("is a link"), "{err}");

    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.add_symlink(
        "passwd",
        "/etc/passwd",
        zip::write::SimpleFileOptions::default(),
    )
    .expect("symlink");
    let zip = w.finish().expect("finish").into_inner();
    let err = convert(&zip, Kind::Zip).expect_err("zip link");
    assert!(err.to_string().contains("is a link"), "{err}");
}

#[test]
fn a_zip_bomb_is_refused_without_unpacking_it() {
    // 256 MiB of zeros deflate to about 250 KiB.
    let zeros = vec![0u8; 1 << 20];
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    w.start_file("zeros.bin", opts).expect("file");
    for _ in 0..256 {
        w.write_all(&zeros).expect("write");
    }
    let zip = w.finish().expect("finish").into_inner();
    assert!(zip.len() < 2 << 20, "{}", zip.len());
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("bomb.zip");
    std::fs::write(&src, &zip).expect("write");
    let dest = dir.path().join("out.tar");
    let err = to_tar(
        &src,
        Kind::Zip,
        &dest,
        Limits {
            room: ROOM,
            uploaded: zip.len() as u64,
        },
    )
    .expect_err("bomb");
    assert!(matches!(err, ArchiveError::Bomb(_)), "{err}");
    assert!(err.to_string().contains("zip bomb"), "{err}");
    // Nothing is left behind, and the spool never held more than the limit.
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
}

#[test]
fn an_archive_over_the_room_is_too_big() {
    let zip = zip_of(&[("a.bin", &[7u8; 64 << 10])]);
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("a.zip");
    std::fs::write(&src, &zip).expect("write");
    let err = to_tar(
        &src,
        Kind::Zip,
        &dir.path().join("out.tar"),
        Limits {
            room: 16 << 10,
            uploaded: zip.len() as u64,
        },
    )
    .expect_err("too big");
    assert!(matches!(err, ArchiveError::TooBig { .. }), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the name, an accepted path is plain and relative.
    #[test]
    fn accepted_names_stay_inside(name in "[a-z./\\\\]{0,24}") {
        if let Ok(Some(p)) = plain_path(&name) {
            prop_assert!(p.components().all(|c| matches!(c, Component::Normal(_))));
        }
    }

    /// Arbitrary bytes sniffed as an archive are refused cleanly, never a panic.
    #[test]
    fn garbage_is_refused(mut bytes in proptest::collection::vec(any::<u8>(), 0..2048), zip in any::<bool>()) {
        let kind = if zip { Kind::Zip } else { Kind::TarGz };
        if zip && bytes.len() >= 4 { bytes[..4].copy_from_slice(b"PK\x03\x04"); }
        let _ = convert(&bytes, kind);
    }
}
