//! The proof of the graders, not just of the solutions. For every task in `tasks/`, each of its
//! `accept:` answers and each of its `reject:` answers goes on a `lite` cluster that holds nothing
//! but what a fresh one does (a fresh cluster, or one put back so after an answer to another task:
//! [`pristine`]; a cluster sees each task once): the setup alone scores 0; an accepted answer then
//! passes every check and guard and earns every point; a rejected answer settles at exactly the
//! points it states and does not pass. Then every task's setup goes into one cluster, as a mock
//! exam has them: each scores 0, and after every reference solution each passes (so the solutions
//! are proven among all the other tasks' objects, which is stricter than alone). Each cluster is
//! deleted whatever happens.
//!
//! A task that places, checks or writes files gets a real terminal container beside its cluster,
//! and its files go through it as a session's do.
//!
//! A task whose names vary (`vary:`) is proven twice over in the first test: as written, and as an
//! exam session gets it with other names (its answers renamed as its text is), where its reference
//! solution must pass too (side by side, the tasks are proven as written).
//!
//! `TASK_PROOF_ONLY=id[,id...]` proves only those tasks, for authors at work on one;
//! `TASK_PROOF_PARALLEL=n` sets how many clusters run at once.

mod pristine;

use crate::common;

use std::{
    borrow::Cow,
    collections::{HashSet, VecDeque},
    path::Path,
    sync::Mutex,
    time::{Duration, Instant},
};

use ckad_platform::{
    clusters::{Cluster, ClusterName, ClusterProvider, ClusterSpec, LiteProvider},
    docker::DockerEngine,
    tasks::{score, Answer, CheckResult, LearnerFiles, SolutionRunner, Target, Task, TaskCatalog},
    terminals::{DockerTerminals, TerminalAccess, TerminalFiles, TerminalRuntime, TerminalSpec},
};
use pristine::Pristine;

/// Clusters at once unless `TASK_PROOF_PARALLEL` says otherwise: most of a proof is waiting for
/// controllers, so 2 shared cores hold four.
const PARALLEL: usize = 4;
/// Controllers finish what a setup or an answer started (revisions, pods) within this.
const SETTLE: Duration = Duration::from_secs(2);
/// After an answer, pods and endpoints take a moment to become ready.
const CONVERGE: Duration = Duration::from_secs(60);

/// The exam session whose names a varied task is proven with.
const SESSION: &str = "task-proof";

/// What one proof applies after the setup.
#[derive(Clone, Copy)]
enum Trial<'t> {
    Accepted(&'t Answer),
    Rejected(&'t Answer),
    /// The reference solution, which must pass.
    Solution,
}

impl Trial<'_> {
    fn name(&self) -> String {
        match self {
            Trial::Accepted(answer) => format!("accepted answer \"{}\"", answer.name),
            Trial::Rejected(answer) => format!("rejected answer \"{}\"", answer.name),
            Trial::Solution => "reference solution".to_owned(),
        }
    }
}

/// A task as written, or as the exam session [`SESSION`] has it.
struct Variant<'t> {
    task: Cow<'t, Task>,
    varied: bool,
}

impl Variant<'_> {
    fn names(&self) -> &'static str {
        match self.varied {
            true => "with the names of an exam session",
            false => "as written",
        }
    }
}

/// Each task as written and, when its names vary, as an exam session has it.
fn variants<'t>(tasks: &[&'t Task]) -> Vec<Variant<'t>> {
    tasks
        .iter()
        .flat_map(|&task| {
            let varied = task.varies().then(|| Variant {
                task: task.for_session(SESSION).unwrap_or_else(|e| panic!("{e}")),
                varied: true,
            });
            std::iter::once(Variant {
                task: Cow::Borrowed(task),
                varied: false,
            })
            .chain(varied)
        })
        .collect()
}

fn catalog() -> TaskCatalog {
    TaskCatalog::load(concat!(env!("CARGO_MANIFEST_DIR"), "/tasks")).unwrap_or_else(|e| panic!("{e}"))
}

fn chosen(catalog: &TaskCatalog) -> Vec<&Task> {
    let only: Option<Vec<String>> = std::env::var("TASK_PROOF_ONLY")
        .ok()
        .map(|ids| ids.split(',').map(str::to_owned).collect());
    let tasks: Vec<&Task> = catalog
        .list()
        .iter()
        .filter(|task| {
            only.as_ref()
                .is_none_or(|ids| ids.iter().any(|id| id == task.id()))
        })
        .collect();
    assert!(!tasks.is_empty(), "no task to prove");
    tasks
}

fn terminals(state: &Path) -> DockerTerminals {
    DockerTerminals::new(
        DockerEngine::new("unix:///var/run/docker.sock"),
        common::TERMINAL_IMAGE,
        &common::instance(state),
    )
}

/// Runs `body` with the cluster's terminal when `wanted`, removing the terminal afterwards.
async fn with_files<T>(
    cluster: &Cluster,
    state: &Path,
    wanted: bool,
    body: impl AsyncFnOnce(&dyn LearnerFiles) -> Result<T, String>,
) -> Result<T, String> {
    if !wanted {
        return body(&common::NoTerminal).await;
    }
    let terminals = terminals(state);
    terminals
        .create(&TerminalSpec {
            cluster: &cluster.name,
            network: &cluster.network,
            access: TerminalAccess::Cluster(&cluster.terminal_kubeconfig),
            session_id: cluster.name.as_str(),
            user_id: "task-proof",
        })
        .await
        .map_err(|e| format!("no terminal: {e}"))?;
    let files = TerminalFiles {
        runtime: &terminals,
        cluster: &cluster.name,
    };
    let outcome = body(&files).await;
    if let Err(e) = terminals.remove(&cluster.name).await {
        eprintln!("the terminal of {} was not removed: {e}", cluster.name);
    }
    outcome
}

fn provider(state: &Path) -> LiteProvider {
    LiteProvider::new(
        DockerEngine::new("unix:///var/run/docker.sock"),
        Some(common::lite_bin_dir()),
        state,
        &common::instance(state),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_answer_is_graded_as_its_task_says() {
    let catalog = catalog();
    let tasks = chosen(&catalog);
    let state = tempfile::tempdir().unwrap();
    let provider = provider(state.path());
    let parallel = std::env::var("TASK_PROOF_PARALLEL")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(PARALLEL);

    let variants = variants(&tasks);
    // Round by round (every task's first answer, then every task's second, ...), so that the
    // answers of one task are far apart in the queue.
    let per_task: Vec<Vec<(&Variant, Trial)>> = variants
        .iter()
        .map(|variant| {
            let task = &variant.task;
            let solution = variant.varied.then_some(Trial::Solution);
            let accepted = task.accepted().iter().map(Trial::Accepted);
            let rejected = task.rejected().iter().map(Trial::Rejected);
            accepted
                .chain(rejected)
                .chain(solution)
                .map(|trial| (variant, trial))
                .collect()
        })
        .collect();
    let rounds = per_task.iter().map(Vec::len).max().unwrap_or(0);
    let trials: Vec<(&Variant, Trial)> = (0..rounds)
        .flat_map(|round| {
            per_task
                .iter()
                .filter_map(move |answers| answers.get(round).copied())
        })
        .collect();
    let started = Instant::now();
    let queue = Mutex::new(trials.iter().copied().collect::<VecDeque<_>>());
    let workers = (0..parallel).map(|_| worker(&provider, &catalog, &queue, state.path()));
    let failures: Vec<String> = futures_util::future::join_all(workers)
        .await
        .into_iter()
        .flatten()
        .collect();
    eprintln!(
        "proved {} answers of {} tasks ({} of them also with other names) in {:?}, {parallel} clusters at a time",
        trials.len(),
        tasks.len(),
        variants.len() - tasks.len(),
        started.elapsed()
    );
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// A cluster one answer after another is tried on.
struct Reused {
    cluster: Cluster,
    client: kube::Client,
    pristine: Pristine,
    /// The tasks tried on it. Each cluster sees a task once: the API server's admission keeps a
    /// namespace's quotas and limit ranges for 30 seconds after it looked them up, so a
    /// namespace made again soon after could meet its predecessor's (tasks' own namespaces are
    /// disjoint: the side-by-side proof below needs them so).
    seen: HashSet<String>,
}

/// Takes trials from `queue` until it is empty, each on its cluster put back to what it was made
/// with, the first whose task that cluster has not seen; a cluster that has seen every task left,
/// or cannot be put back, is replaced. Returns the failures.
async fn worker(
    provider: &LiteProvider,
    catalog: &TaskCatalog,
    queue: &Mutex<VecDeque<(&Variant<'_>, Trial<'_>)>>,
    state: &Path,
) -> Vec<String> {
    let mut failures = Vec::new();
    let mut reused: Option<Reused> = None;
    loop {
        let next = {
            let mut queue = queue.lock().unwrap();
            if queue.is_empty() {
                break;
            }
            let unseen = |(variant, _): &(&Variant, Trial)| {
                reused
                    .as_ref()
                    .is_none_or(|on| !on.seen.contains(variant.task.id()))
            };
            queue.iter().position(unseen).and_then(|at| queue.remove(at))
        };
        let Some((variant, trial)) = next else {
            delete(provider, reused.take().expect("a fresh cluster has seen nothing")).await;
            continue;
        };
        let task = &variant.task;
        let started = Instant::now();
        if reused.is_none() {
            reused = match fresh_reusable(provider).await {
                Ok(made) => Some(made),
                Err(e) => {
                    failures.push(format!(
                        "task {} {}, {}: {e}",
                        task.id(),
                        variant.names(),
                        trial.name()
                    ));
                    continue;
                }
            };
        }
        let on = reused.as_mut().expect("made above");
        on.seen.insert(task.id().to_owned());
        let outcome = prove(on, catalog, task, trial, state).await;
        let proved_in = started.elapsed();
        let put_back = on.pristine.restore(&on.client).await;
        eprintln!(
            "{} {}, {} ({proved_in:?}, put back in {:?}): {}",
            task.id(),
            variant.names(),
            trial.name(),
            started.elapsed() - proved_in,
            if outcome.is_ok() { "proved" } else { "FAILED" }
        );
        if let Err(why) = outcome {
            failures.push(format!(
                "task {} ({}) {}, {}: {why}",
                task.id(),
                task.file().display(),
                variant.names(),
                trial.name()
            ));
        }
        if let Err(e) = put_back {
            eprintln!(
                "cluster {} is replaced, after {} {}: {e}",
                on.cluster.name,
                task.id(),
                trial.name()
            );
            delete(provider, reused.take().expect("used above")).await;
        }
    }
    if let Some(done) = reused {
        delete(provider, done).await;
    }
    failures
}

async fn fresh_reusable(provider: &LiteProvider) -> Result<Reused, String> {
    let (name, cluster) = fresh_cluster(provider).await?;
    let made = async {
        let client = cluster
            .admin_kubeconfig
            .client()
            .await
            .map_err(|e| e.to_string())?;
        let pristine = Pristine::record(&client).await?;
        Ok::<_, String>((client, pristine))
    };
    match made.await {
        Ok((client, pristine)) => Ok(Reused {
            cluster,
            client,
            pristine,
            seen: HashSet::new(),
        }),
        Err(e) => {
            let _ = provider.delete(&name).await;
            Err(format!("cluster {name}: {e}"))
        }
    }
}

async fn delete(provider: &LiteProvider, done: Reused) {
    if let Err(e) = provider.delete(&done.cluster.name).await {
        eprintln!("cluster {} was not deleted: {e}", done.cluster.name);
    }
}

/// A new cluster. A port found free may be taken by another process on the machine before the
/// cluster binds it, so a failed start is tried once more on other ports.
async fn fresh_cluster(provider: &LiteProvider) -> Result<(ClusterName, Cluster), String> {
    let mut failure = String::new();
    for _ in 0..2 {
        let spec = ClusterSpec {
            name: ClusterName::generate(),
            ports: common::ports(),
        };
        match provider.create(&spec).await {
            Ok(cluster) => return Ok((spec.name, cluster)),
            Err(e) => {
                failure = e.to_string();
                if let Err(e) = provider.delete(&spec.name).await {
                    eprintln!("cluster {} that did not start was not deleted: {e}", spec.name);
                }
            }
        }
    }
    Err(format!("no cluster: {failure}"))
}

async fn prove(
    on: &Reused,
    catalog: &TaskCatalog,
    task: &Task,
    trial: Trial<'_>,
    state: &Path,
) -> Result<(), String> {
    let cluster = &on.cluster;
    with_files(cluster, state, task.uses_files(), async |files| {
        let target = Target {
            client: &on.client,
            files,
            runs_containers: false,
        };
        prove_on(&target, cluster, catalog, task, trial, state).await
    })
    .await
}

async fn prove_on(
    target: &Target<'_>,
    cluster: &Cluster,
    catalog: &TaskCatalog,
    task: &Task,
    trial: Trial<'_>,
    state: &Path,
) -> Result<(), String> {
    task.prepare(target.client)
        .await
        .map_err(|e| format!("setup: {e}"))?;
    task.place_files(target.files)
        .await
        .map_err(|e| format!("setup: {e}"))?;
    tokio::time::sleep(SETTLE).await;
    let at_setup = task.grade(target).await;
    if score(&at_setup) != 0 {
        return Err(format!(
            "the setup alone scores {}:\n{}",
            score(&at_setup),
            report(&at_setup)
        ));
    }

    let runner = runner(cluster, catalog, state);
    match trial {
        Trial::Accepted(answer) | Trial::Rejected(answer) => runner.run_answer(target, answer).await,
        Trial::Solution => runner.run(target, task).await,
    }
    .map_err(|e| format!("applying it: {e}"))?;
    match trial {
        Trial::Accepted(_) | Trial::Solution => passes(target, task).await,
        Trial::Rejected(answer) => settles_at(target, task, answer.points.unwrap_or(0)).await,
    }
}

/// Grades until every check and guard passes and the task earns its weight, or a minute is up.
async fn passes(target: &Target<'_>, task: &Task) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + CONVERGE;
    loop {
        let outcomes = task.grade(target).await;
        if outcomes.iter().all(|o| o.passed) {
            let earned = score(&outcomes);
            return if earned == task.view().weight {
                Ok(())
            } else {
                Err(format!(
                    "every check passes but it earns {earned} of {}",
                    task.view().weight
                ))
            };
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("some checks still fail:\n{}", report(&outcomes)));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Grades until the task earns exactly `points` without passing, then once more a moment later
/// to see that it stays there.
async fn settles_at(target: &Target<'_>, task: &Task, points: u32) -> Result<(), String> {
    tokio::time::sleep(SETTLE).await;
    let deadline = tokio::time::Instant::now() + CONVERGE;
    let rejected = |outcomes: &[CheckResult]| score(outcomes) == points && !outcomes.iter().all(|o| o.passed);
    loop {
        let outcomes = task.grade(target).await;
        if rejected(&outcomes) {
            tokio::time::sleep(SETTLE).await;
            let again = task.grade(target).await;
            return if rejected(&again) {
                Ok(())
            } else {
                Err(format!(
                    "it earned {points} points, then {}:\n{}",
                    score(&again),
                    report(&again)
                ))
            };
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "it earns {} points, not {points}:\n{}",
                score(&outcomes),
                report(&outcomes)
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn report(outcomes: &[CheckResult]) -> String {
    outcomes
        .iter()
        .map(|o| {
            let role = if o.guard {
                "guard".to_owned()
            } else {
                format!("{} pt", o.points)
            };
            match &o.reason {
                None => format!("  + [{role}] {}", o.description),
                Some(reason) => format!("  - [{role}] {}: {reason}", o.description),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn runner(cluster: &Cluster, catalog: &TaskCatalog, state: &Path) -> SolutionRunner {
    let kubeconfig = state.join(format!("{}.kubeconfig", cluster.name));
    write_kubeconfig(cluster, state, &kubeconfig);
    SolutionRunner::new(common::lite_bin_dir(), &kubeconfig, catalog.charts_dir())
}

/// Every task's setup in one cluster, as a mock exam has them: each scores 0; after every
/// reference solution, each passes and earns every point.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn all_tasks_side_by_side_score_nothing_at_setup_and_pass_when_solved() {
    let catalog = catalog();
    let tasks = chosen(&catalog);
    let state = tempfile::tempdir().unwrap();
    let provider = provider(state.path());
    let started = std::time::Instant::now();
    let (name, cluster) = fresh_cluster(&provider).await.unwrap();
    let outcome = side_by_side(&cluster, &catalog, &tasks, state.path()).await;
    provider.delete(&name).await.unwrap();
    eprintln!("{} tasks side by side in {:?}", tasks.len(), started.elapsed());
    if let Err(failures) = outcome {
        panic!("\n{failures}");
    }
}

async fn side_by_side(
    cluster: &Cluster,
    catalog: &TaskCatalog,
    tasks: &[&Task],
    state: &Path,
) -> Result<(), String> {
    let client = cluster.admin_kubeconfig.client().await.unwrap();
    let with_terminal = tasks.iter().any(|task| task.uses_files());
    with_files(cluster, state, with_terminal, async |files| {
        let target = Target {
            client: &client,
            files,
            runs_containers: false,
        };
        side_by_side_on(&target, cluster, catalog, tasks, state).await
    })
    .await
}

async fn side_by_side_on(
    target: &Target<'_>,
    cluster: &Cluster,
    catalog: &TaskCatalog,
    tasks: &[&Task],
    state: &Path,
) -> Result<(), String> {
    for task in tasks {
        task.prepare(target.client)
            .await
            .map_err(|e| format!("setup of {}: {e}", task.id()))?;
        task.place_files(target.files)
            .await
            .map_err(|e| format!("setup of {}: {e}", task.id()))?;
    }
    tokio::time::sleep(SETTLE).await;
    let mut failures = Vec::new();
    for task in tasks {
        let outcomes = task.grade(target).await;
        if score(&outcomes) != 0 {
            failures.push(format!(
                "{} scores {} at setup:\n{}",
                task.id(),
                score(&outcomes),
                report(&outcomes)
            ));
        }
    }
    let runner = runner(cluster, catalog, state);
    for task in tasks {
        runner
            .run(target, task)
            .await
            .map_err(|e| format!("solution of {}: {e}", task.id()))?;
    }
    for task in tasks {
        if let Err(why) = passes(target, task).await {
            failures.push(format!("{} after its solution: {why}", task.id()));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n\n"))
    }
}

/// The admin kubeconfig as a file for kubectl and helm: kwokctl's own, pointed at the address
/// the platform reaches the API on.
fn write_kubeconfig(cluster: &Cluster, state: &Path, to: &Path) {
    let written = state
        .join("lite/clusters")
        .join(cluster.name.as_str())
        .join("kubeconfig.yaml");
    let mut config = kube::config::Kubeconfig::read_from(written).unwrap();
    for named in &mut config.clusters {
        if let Some(c) = named.cluster.as_mut() {
            c.server = Some(cluster.api_endpoint.clone());
        }
    }
    std::fs::write(to, serde_yaml::to_string(&config).unwrap()).unwrap();
}
