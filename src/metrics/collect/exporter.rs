//! Families about the exporter itself: build facts, its runtime's tasks, its shard, supervised restarts.

use super::Scrape;
use crate::metrics::text::Lines;
use crate::supervise::Task;

pub(super) fn build_info(s: &Scrape<'_>, l: &mut Lines<'_>) {
    let b = &s.collector.build;
    l.sample(&[&b.version, &b.revision, &b.rustc_version], 1.0);
}

pub(super) fn runtime_tasks(s: &Scrape<'_>, l: &mut Lines<'_>) {
    if let Some(runtime) = &s.collector.runtime {
        l.sample(&[], runtime.metrics().num_alive_tasks() as f64);
    }
}

pub(super) fn task_restarts(s: &Scrape<'_>, l: &mut Lines<'_>) {
    let restarts = s.collector.trackers.restarts();
    for task in Task::ALL {
        l.count(&[task.as_str()], restarts.get(task));
    }
}

pub(super) fn shards(s: &Scrape<'_>, l: &mut Lines<'_>) {
    if let Some(shard) = s.collector.trackers.shard() {
        l.sample(&[&shard.index().to_string()], f64::from(shard.count()));
    }
}
