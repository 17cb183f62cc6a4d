//! Records kept in memory, keyed by string: the storage of [`crate::MemoryStore`]
//! (circuits) and [`crate::MemoryBudgetStore`] (retry budget), for one process and for
//! tests. A mutex makes each read-change-write one step.

use std::collections::HashMap;
use std::io;
use std::sync::Mutex;

/// One record per key, the default until first changed.
#[derive(Debug, Default)]
pub(crate) struct MemoryRecords<R> {
    records: Mutex<HashMap<String, R>>,
}

impl<R: Clone + Default> MemoryRecords<R> {
    /// The record of `key` (the default when there is none).
    pub(crate) fn load(&self, key: &str) -> io::Result<R> {
        let records = self
            .records
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?;
        Ok(records.get(key).cloned().unwrap_or_default())
    }

    /// Reads, changes and keeps the record of `key` as one step; returns the new record.
    pub(crate) fn update(&self, key: &str, change: &mut dyn FnMut(&mut R)) -> io::Result<R> {
        let mut records = self
            .records
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?;
        let record = records.entry(key.to_string()).or_default();
        change(record);
        Ok(record.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_start_default_and_keep_their_changes_per_key() {
        let records = MemoryRecords::<u32>::default();
        assert_eq!(records.load("a").expect("load"), 0);
        assert_eq!(records.update("a", &mut |n| *n += 2).expect("update"), 2);
        assert_eq!(records.update("a", &mut |n| *n += 1).expect("update"), 3);
        assert_eq!(records.load("a").expect("load"), 3);
        assert_eq!(records.load("b").expect("load"), 0, "keys are separate");
    }
}
