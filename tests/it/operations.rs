//! The operator's scripts against real parts: backups of a SQLite file under write load, restores
//! that prove themselves, and the orphan clean-up among labelled and unlabelled Docker objects.

use crate::common;

use std::{path::Path, process::Command, time::Duration};

use chrono::Utc;
use ckad_platform::{
    clusters::{self, ClusterName, ClusterSpec},
    docker::DockerEngine,
    domain::SessionStatus,
    store::{NewSession, Store},
};

fn script(name: &str) -> Command {
    Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/").to_owned() + name)
}

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn backups(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// Restores `backup` into a fresh directory and returns the restore script's `table count` lines.
fn restore(backup: &Path, into: &Path) -> String {
    run(script("restore-db.sh").arg(backup).arg(into))
}

fn count_line(report: &str, table: &str) -> i64 {
    let line = report
        .lines()
        .find(|l| l.starts_with(&format!("{table} ")))
        .expect(table);
    line.split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_write_load_restores_with_matching_counts() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/ckad.db", dir.path().display());
    let store = Store::open(&url).await.unwrap();
    let backup_dir = dir.path().join("backups");

    // Learners keep signing up while the backup runs.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for n in 0..1500 {
                store
                    .insert_user(&format!("learner{n}@example.com"), "")
                    .await
                    .unwrap();
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let during = {
        let (url, backup_dir) = (url.clone(), backup_dir.clone());
        tokio::task::spawn_blocking(move || {
            run(script("backup-db.sh")
                .arg(&url)
                .env("BACKUP_DIR", &backup_dir)
                .env("BACKUP_KEEP", "5"))
        })
        .await
        .unwrap()
    };
    assert!(during.starts_with("backup-db: wrote "), "{during}");
    writer.await.unwrap();
    let taken_under_load = backups(&backup_dir).pop().unwrap();
    let report = restore(&taken_under_load, &dir.path().join("restored-during"));
    assert!(report.contains("passed its integrity check"), "{report}");
    let users_then = count_line(&report, "users");
    assert!((0..=1500).contains(&users_then), "{report}");

    // Quiet now: a new backup holds exactly what the live database holds.
    std::thread::sleep(Duration::from_secs(1)); // a new second, a new file name
    run(script("backup-db.sh")
        .arg(&url)
        .env("BACKUP_DIR", &backup_dir)
        .env("BACKUP_KEEP", "5"));
    let report = restore(
        &backups(&backup_dir).pop().unwrap(),
        &dir.path().join("restored-after"),
    );
    assert_eq!(count_line(&report, "users"), 1500);
    assert_eq!(
        count_line(&report, "_sqlx_migrations"),
        ckad_platform::store::MIGRATOR.iter().count() as i64
    );
}

#[test]
fn old_backups_are_pruned_to_the_newest_ones() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ckad.db");
    run(Command::new("sqlite3")
        .arg(&db)
        .arg("CREATE TABLE t (x); INSERT INTO t VALUES (1);"));
    let backup_dir = dir.path().join("backups");
    std::fs::create_dir(&backup_dir).unwrap();
    for old in [
        "ckad-20200101T000000Z.db",
        "ckad-20200102T000000Z.db",
        "ckad-20200103T000000Z.db",
    ] {
        std::fs::write(backup_dir.join(old), b"old").unwrap();
    }
    let out = run(script("backup-db.sh")
        .arg(format!("sqlite://{}", db.display()))
        .env("BACKUP_DIR", &backup_dir)
        .env("BACKUP_KEEP", "2"));
    assert!(out.contains("removed 2 older copies"), "{out}");
    let kept: Vec<String> = backups(&backup_dir)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[0], "ckad-20200103T000000Z.db");
}

#[test]
fn a_restore_refuses_a_directory_that_is_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("b.db");
    run(Command::new("sqlite3").arg(&backup).arg("CREATE TABLE t (x);"));
    std::fs::write(dir.path().join("existing"), b"keep me").unwrap();
    let output = script("restore-db.sh")
        .arg(&backup)
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not empty"));
    assert_eq!(std::fs::read(dir.path().join("existing")).unwrap(), b"keep me");
}

#[tokio::test]
async fn the_cleanup_removes_orphans_and_leaves_owned_and_unlabelled_things_alone() {
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings(dir.path(), "unix:///var/run/docker.sock");
    let store = Store::open(&settings.database_url).await.unwrap();
    let provider = clusters::provider(&settings.clusters, DockerEngine::new(&settings.docker_host)).unwrap();
    let (owned, orphan) = (ClusterName::generate(), ClusterName::generate());
    let specs = [owned.clone(), orphan.clone()].map(|name| ClusterSpec {
        name,
        ports: common::ports(),
    });
    let (a, b) = tokio::join!(provider.create(&specs[0]), provider.create(&specs[1]));
    a.unwrap();
    b.unwrap();
    let user = store.insert_user("ada@example.com", "").await.unwrap();
    let now = Utc::now();
    let new = NewSession {
        user_id: &user.id,
        cluster_name: owned.as_str(),
        start_time: now,
        expires_at: now + chrono::Duration::hours(1),
        exam_id: None,
    };
    let session = store.insert_session(new, u32::MAX).await.unwrap().unwrap();
    store
        .set_session_status(&session.id, SessionStatus::Started, "")
        .await
        .unwrap();

    // An operator's own things, named like ours but without our labels.
    let decoy = format!("kwok-{}", ClusterName::generate());
    run(Command::new("docker").args(["network", "create", &decoy]));
    let image = format!(
        "ckad-lite/etcd:{}",
        ckad_platform::clusters::LiteVersions::pinned().etcd
    );
    let decoy_container =
        run(Command::new("docker").args(["create", "--name", &format!("{decoy}-etcd"), &image, "etcd"]));

    let out = run(script("cleanup-orphans.sh")
        .env("DATABASE_URL", &settings.database_url)
        .env("STATE_DIR", &settings.clusters.state_dir)
        .env("PLATFORM_INSTANCE", &settings.clusters.instance));
    assert!(
        out.contains(&format!("removed lite cluster {orphan} (5 containers")),
        "{out}"
    );
    assert!(
        out.ends_with("cleanup-orphans: 1 orphaned clusters removed\n"),
        "{out}"
    );

    assert_eq!(
        common::containers_labelled(&format!("com.docker.compose.project=kwok-{orphan}"))
            .await
            .len(),
        0
    );
    assert!(!common::network_exists(&format!("kwok-{orphan}")).await);
    assert!(!settings
        .clusters
        .state_dir
        .join("lite/clusters")
        .join(orphan.as_str())
        .exists());
    assert!(
        provider.health(&owned).await.unwrap().is_healthy(),
        "the started session's cluster stays"
    );
    assert!(
        common::network_exists(&decoy).await,
        "an unlabelled network stays"
    );
    run(Command::new("docker").args(["inspect", decoy_container.trim()]));

    run(Command::new("docker").args(["rm", "-f", decoy_container.trim()]));
    run(Command::new("docker").args(["network", "rm", &decoy]));
    provider.delete(&owned).await.unwrap();
}
