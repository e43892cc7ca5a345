//! Opening a session on this device, once for both clients: unlocking the
//! keys a store kept, or setting the device up in one of the three modes
//! (a new account's first device; another device linked from a key backup;
//! this very device restored from its backup), with the checks that keep a
//! store, a backup and the relay's device list consistent.
//!
//! [`SetUp`] is sans-I/O: [`SetUp::step`] says what it needs ([`SetupNeed`]);
//! the driver does it (the key derivation and generation, the store, the
//! relay) and reports what it saw, then steps again. The order matters:
//! a new device's keys are kept in the store **before** its bundle is
//! published, so a crash in between never leaves a device at the relay whose
//! keys are nowhere (the next unlock uploads a device the relay does not list).

use uuid::Uuid;

/// How to set the device up when the store holds no account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The account's first device: a new identity and device keys.
    New,
    /// Another device of the account: the identity from a key backup of any
    /// of its devices, new device keys.
    Link,
    /// This very device (same id and keys) from its backup.
    Restore,
}

/// Why the session cannot open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    /// The store or the backup belongs to another account.
    #[error("{0}")]
    StoreMismatch(&'static str),
    /// The account has devices already: link this one with a key backup.
    #[error("this account already has devices: link this device with a key backup of one of them")]
    IdentityExists,
    /// This device was revoked.
    #[error("this device was revoked")]
    DeviceRevoked,
    /// The driver answered out of order.
    #[error("the session set-up was driven out of order")]
    OutOfOrder,
}

/// A device of this account as the relay lists it (revoked ones included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnDevice {
    /// The device.
    pub device_id: Uuid,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// What the set-up needs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupNeed {
    /// Unlock the stored account's keys with the store passphrase (upgrading
    /// a store from before the store key, and saving it), then
    /// [`SetUp::unlocked`] with the device's id.
    Unlock,
    /// List this account's devices, revoked ones included, then
    /// [`SetUp::own_devices`].
    OwnDevices,
    /// Generate a new identity and device keys under a new device id.
    Generate,
    /// Open the key backup with its secret, then [`SetUp::backup_opened`]
    /// with the account and device it holds.
    OpenBackup,
    /// Link: new device keys (and a new device id) under the backup's identity.
    NewDeviceKeys,
    /// Keep the device's keys in the store (a new store key, wrapped under
    /// the store passphrase), then [`SetUp::saved`].
    SaveAccount,
    /// Publish the device's signed bundle, then [`SetUp::uploaded`].
    Upload,
    /// The keys are ready: pin this user's own key (verified) if the store
    /// has no pin for them, load the rooms, and open the session.
    Done,
    /// It cannot open: say why (the driver frees what it holds).
    Failed(SetupError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    ListingStored,
    Listing,
    Opening,
    MakeKeys,
    Saving,
    Uploading,
    Done,
    Failed(SetupError),
    /// Waiting for the driver's answer to the need just given.
    Waiting,
}

/// One session opening (see the module docs).
#[derive(Debug)]
pub struct SetUp {
    me: Uuid,
    /// The account the store holds (`None`: set the device up in `mode`).
    stored: Option<Uuid>,
    mode: Mode,
    state: State,
    /// This device's id, once known (unlocked, or from the backup).
    device: Option<Uuid>,
    listed: Vec<OwnDevice>,
    /// What the driver was asked last (to read its answer).
    asked: Option<SetupNeed>,
}

impl SetUp {
    /// Opens user `me`'s session: `stored` is the user id of the account the
    /// store holds, if any; `mode` is used when it holds none.
    pub fn new(me: Uuid, stored: Option<Uuid>, mode: Mode) -> Self {
        Self {
            me,
            stored,
            mode,
            state: State::Start,
            device: None,
            listed: Vec::new(),
            asked: None,
        }
    }

    fn ask(&mut self, need: SetupNeed) -> SetupNeed {
        self.state = State::Waiting;
        self.asked = Some(need);
        need
    }

    fn fail(&mut self, e: SetupError) -> SetupNeed {
        self.state = State::Failed(e);
        SetupNeed::Failed(e)
    }

    /// What to do next. Asked again before the driver answered, it fails.
    pub fn step(&mut self) -> SetupNeed {
        match self.state {
            State::Start => match self.stored {
                Some(user) if user != self.me => self.fail(SetupError::StoreMismatch(
                    "the store holds another account's keys",
                )),
                Some(_) => self.ask(SetupNeed::Unlock),
                None => self.ask(SetupNeed::OwnDevices),
            },
            State::ListingStored => self.ask(SetupNeed::OwnDevices),
            State::Listing => {
                let mine = self
                    .device
                    .and_then(|d| self.listed.iter().find(|x| x.device_id == d).copied());
                if self.stored.is_some() {
                    return match mine {
                        Some(d) if d.revoked => self.fail(SetupError::DeviceRevoked),
                        Some(_) => {
                            self.state = State::Done;
                            SetupNeed::Done
                        }
                        // Kept but never published (a crash before the upload).
                        None => self.ask(SetupNeed::Upload),
                    };
                }
                match self.mode {
                    Mode::New if !self.listed.is_empty() => self.fail(SetupError::IdentityExists),
                    Mode::New => self.ask(SetupNeed::Generate),
                    Mode::Link | Mode::Restore => self.ask(SetupNeed::OpenBackup),
                }
            }
            State::Opening => match self.mode {
                Mode::Link => self.ask(SetupNeed::NewDeviceKeys),
                _ => {
                    let revoked = self
                        .device
                        .is_some_and(|d| self.listed.iter().any(|x| x.device_id == d && x.revoked));
                    if revoked {
                        self.fail(SetupError::DeviceRevoked)
                    } else {
                        self.ask(SetupNeed::SaveAccount)
                    }
                }
            },
            State::MakeKeys => self.ask(SetupNeed::SaveAccount),
            State::Saving => self.ask(SetupNeed::Upload),
            State::Uploading | State::Done => {
                self.state = State::Done;
                SetupNeed::Done
            }
            State::Failed(e) => SetupNeed::Failed(e),
            State::Waiting => self.fail(SetupError::OutOfOrder),
        }
    }

    fn answer(&mut self, to: SetupNeed, next: State) {
        if self.state == State::Waiting && self.asked == Some(to) {
            self.state = next;
        } else {
            self.state = State::Failed(SetupError::OutOfOrder);
        }
    }

    /// The stored keys opened: this device's id.
    pub fn unlocked(&mut self, device: Uuid) {
        self.device = Some(device);
        self.answer(SetupNeed::Unlock, State::ListingStored);
    }

    /// The account's devices, revoked ones included.
    pub fn own_devices(&mut self, list: Vec<OwnDevice>) {
        self.listed = list;
        self.answer(SetupNeed::OwnDevices, State::Listing);
    }

    /// New keys were generated (or, linking, new device keys made) for `device`.
    pub fn generated(&mut self, device: Uuid) {
        self.device = Some(device);
        let to = self.asked.unwrap_or(SetupNeed::Generate);
        if matches!(to, SetupNeed::Generate | SetupNeed::NewDeviceKeys) {
            self.answer(to, State::MakeKeys);
        } else {
            self.state = State::Failed(SetupError::OutOfOrder);
        }
    }

    /// The backup opened: the account and the device it holds.
    pub fn backup_opened(&mut self, user: Uuid, device: Uuid) {
        if self.state == State::Waiting && self.asked == Some(SetupNeed::OpenBackup) {
            if user != self.me {
                self.state = State::Failed(SetupError::StoreMismatch(
                    "the backup is of another account",
                ));
                return;
            }
            // Restore: this very device; link: only the identity is taken.
            if self.mode == Mode::Restore {
                self.device = Some(device);
            }
        }
        self.answer(SetupNeed::OpenBackup, State::Opening);
    }

    /// The keys are in the store.
    pub fn saved(&mut self) {
        self.answer(SetupNeed::SaveAccount, State::Saving);
    }

    /// The bundle is published.
    pub fn uploaded(&mut self) {
        self.answer(SetupNeed::Upload, State::Uploading);
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

    const ME: Uuid = Uuid::from_u128(1);
    const OTHER: Uuid = Uuid::from_u128(2);
    const DEV: Uuid = Uuid::from_u128(0x10);
    const OLD: Uuid = Uuid::from_u128(0x11);

    fn dev(id: Uuid, revoked: bool) -> OwnDevice {
        OwnDevice {
            device_id: id,
            revoked,
        }
    }

    /// Drives a set-up, answering each need; the needs in order.
    fn run(mut s: SetUp, listed: Vec<OwnDevice>, backup: (Uuid, Uuid)) -> Vec<SetupNeed> {
        let mut out = Vec::new();
        for _ in 0..12 {
            let n = s.step();
            out.push(n);
            match n {
                SetupNeed::Unlock => s.unlocked(DEV),
                SetupNeed::OwnDevices => s.own_devices(listed.clone()),
                SetupNeed::Generate | SetupNeed::NewDeviceKeys => s.generated(DEV),
                SetupNeed::OpenBackup => s.backup_opened(backup.0, backup.1),
                SetupNeed::SaveAccount => s.saved(),
                SetupNeed::Upload => s.uploaded(),
                SetupNeed::Done | SetupNeed::Failed(_) => return out,
            }
        }
        panic!("no end: {out:?}");
    }

    use SetupNeed::*;

    #[test]
    fn a_stored_account_unlocks_and_is_checked_against_the_relay() {
        let s = || SetUp::new(ME, Some(ME), Mode::New);
        assert_eq!(
            run(s(), vec![dev(DEV, false)], (ME, DEV)),
            vec![Unlock, OwnDevices, Done]
        );
        assert_eq!(
            run(s(), vec![dev(DEV, true)], (ME, DEV)),
            vec![Unlock, OwnDevices, Failed(SetupError::DeviceRevoked)]
        );
        // Kept but never published: published now.
        assert_eq!(
            run(s(), vec![dev(OLD, false)], (ME, DEV)),
            vec![Unlock, OwnDevices, Upload, Done]
        );
        assert_eq!(
            run(SetUp::new(ME, Some(OTHER), Mode::New), vec![], (ME, DEV)),
            vec![Failed(SetupError::StoreMismatch(
                "the store holds another account's keys"
            ))]
        );
    }

    #[test]
    fn a_new_device_is_kept_before_it_is_published() {
        let s = SetUp::new(ME, None, Mode::New);
        assert_eq!(
            run(s, vec![], (ME, DEV)),
            vec![OwnDevices, Generate, SaveAccount, Upload, Done]
        );
        let s = SetUp::new(ME, None, Mode::New);
        assert_eq!(
            run(s, vec![dev(OLD, true)], (ME, DEV)),
            vec![OwnDevices, Failed(SetupError::IdentityExists)],
            "a revoked device is still the account's identity"
        );
    }

    #[test]
    fn link_and_restore_take_only_this_accounts_backup() {
        let link = || SetUp::new(ME, None, Mode::Link);
        assert_eq!(
            run(link(), vec![dev(OLD, false)], (ME, OLD)),
            vec![
                OwnDevices,
                OpenBackup,
                NewDeviceKeys,
                SaveAccount,
                Upload,
                Done
            ]
        );
        assert_eq!(
            run(link(), vec![dev(OLD, false)], (OTHER, OLD)),
            vec![
                OwnDevices,
                OpenBackup,
                Failed(SetupError::StoreMismatch(
                    "the backup is of another account"
                ))
            ]
        );
        let restore = || SetUp::new(ME, None, Mode::Restore);
        assert_eq!(
            run(restore(), vec![dev(OLD, false)], (ME, OLD)),
            vec![OwnDevices, OpenBackup, SaveAccount, Upload, Done]
        );
        assert_eq!(
            run(restore(), vec![dev(OLD, true)], (ME, OLD)),
            vec![OwnDevices, OpenBackup, Failed(SetupError::DeviceRevoked)]
        );
        // Linking from a revoked device's backup is fine: only its identity is taken.
        assert_eq!(
            run(link(), vec![dev(OLD, true)], (ME, OLD)).last(),
            Some(&Done)
        );
    }

    #[test]
    fn answers_out_of_order_fail() {
        let mut s = SetUp::new(ME, None, Mode::New);
        assert_eq!(s.step(), OwnDevices);
        s.saved();
        assert_eq!(s.step(), Failed(SetupError::OutOfOrder));
        let mut s = SetUp::new(ME, None, Mode::New);
        assert_eq!(s.step(), OwnDevices);
        assert_eq!(s.step(), Failed(SetupError::OutOfOrder));
    }
}
