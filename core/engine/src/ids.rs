//! Small sorted-vector collections keyed by `Uuid`: the engine's per-room
//! sets and maps. A room holds a handful of entries, and these keep the WASM
//! package small (one sorted `Vec` instead of a family of B-tree instances).

use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

/// A set of ids, kept sorted (serialized as a JSON array).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct IdSet(Vec<Uuid>);

impl IdSet {
    /// Adds `id`; `true` if it was not there.
    pub fn insert(&mut self, id: Uuid) -> bool {
        match self.0.binary_search(&id) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, id);
                true
            }
        }
    }
    /// Whether `id` is in the set.
    pub fn contains(&self, id: &Uuid) -> bool {
        self.0.binary_search(id).is_ok()
    }
    /// Keeps the ids `keep` accepts.
    pub fn retain(&mut self, keep: impl FnMut(&Uuid) -> bool) {
        self.0.retain(keep);
    }
    /// Removes these ids.
    pub fn retain_not(&mut self, ids: impl IntoIterator<Item = Uuid>) {
        for id in ids {
            if let Ok(at) = self.0.binary_search(&id) {
                self.0.remove(at);
            }
        }
    }
    /// Empties the set.
    pub fn clear(&mut self) {
        self.0.clear();
    }
    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The ids, ascending.
    pub fn iter(&self) -> std::slice::Iter<'_, Uuid> {
        self.0.iter()
    }
}

impl Extend<Uuid> for IdSet {
    fn extend<I: IntoIterator<Item = Uuid>>(&mut self, ids: I) {
        for id in ids {
            self.insert(id);
        }
    }
}

impl FromIterator<Uuid> for IdSet {
    fn from_iter<I: IntoIterator<Item = Uuid>>(ids: I) -> Self {
        let mut v: Vec<Uuid> = ids.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        Self(v)
    }
}

impl IntoIterator for IdSet {
    type Item = Uuid;
    type IntoIter = std::vec::IntoIter<Uuid>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'de> Deserialize<'de> for IdSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<Uuid>::deserialize(d)?.into_iter().collect())
    }
}

/// A map from ids, kept sorted by id.
#[derive(Debug, Clone)]
pub struct IdMap<V>(Vec<(Uuid, V)>);

impl<V> Default for IdMap<V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<V> IdMap<V> {
    fn at(&self, id: &Uuid) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.cmp(id))
    }
    pub(crate) fn get(&self, id: &Uuid) -> Option<&V> {
        self.at(id).ok().and_then(|i| self.0.get(i)).map(|(_, v)| v)
    }
    pub(crate) fn get_mut(&mut self, id: &Uuid) -> Option<&mut V> {
        let i = self.at(id).ok()?;
        self.0.get_mut(i).map(|(_, v)| v)
    }
    pub(crate) fn contains_key(&self, id: &Uuid) -> bool {
        self.at(id).is_ok()
    }
    pub(crate) fn insert(&mut self, id: Uuid, value: V) {
        match self.at(&id) {
            Ok(i) => {
                if let Some(slot) = self.0.get_mut(i) {
                    slot.1 = value;
                }
            }
            Err(i) => self.0.insert(i, (id, value)),
        }
    }
    pub(crate) fn remove(&mut self, id: &Uuid) -> Option<V> {
        let i = self.at(id).ok()?;
        Some(self.0.remove(i).1)
    }
    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The ids, ascending.
    pub(crate) fn keys(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.0.iter().map(|(k, _)| *k)
    }
}

impl<V: Copy> IdMap<V> {
    /// The entries, ascending by id.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Uuid, V)> + '_ {
        self.0.iter().copied()
    }
}

impl<V: Default> IdMap<V> {
    /// The value of `id`, inserted as the default first if missing.
    pub(crate) fn or_default(&mut self, id: Uuid) -> &mut V {
        let i = match self.at(&id) {
            Ok(i) => i,
            Err(i) => {
                self.0.insert(i, (id, V::default()));
                i
            }
        };
        match self.0.get_mut(i) {
            Some((_, v)) => v,
            // `i` was found, or an entry was just inserted there.
            None => unreachable!("IdMap index out of bounds"),
        }
    }
}

impl<V> FromIterator<(Uuid, V)> for IdMap<V> {
    fn from_iter<I: IntoIterator<Item = (Uuid, V)>>(items: I) -> Self {
        let mut v: Vec<(Uuid, V)> = items.into_iter().collect();
        v.sort_by_key(|a| a.0);
        v.dedup_by(|a, b| a.0 == b.0);
        Self(v)
    }
}

impl<V> IntoIterator for IdMap<V> {
    type Item = (Uuid, V);
    type IntoIter = std::vec::IntoIter<(Uuid, V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}
