//! The room operations that change who a room's messages are sealed to,
//! once for both clients, in one order (`docs/protocol.md` §12.4):
//!
//! - **create** a group room: created empty at the relay; this device signs
//!   and posts its first membership statement listing the members; only then
//!   the relay is asked to add each (a refusal withdraws that member from the
//!   statement again); the room's view is fetched fresh at the end;
//! - the **direct** room with someone: its peer is pinned to the user asked
//!   for, not to whoever the relay lists;
//! - **add** a member (as the owner): the statement naming them is posted
//!   before the relay is asked; if the relay refuses, it is withdrawn;
//! - **remove** a member or leave: the relay is asked; then, as the owner, the
//!   statement without them is posted whatever the relay answered, so the
//!   removal holds even if the relay keeps (or writes back) them;
//! - **accept** an invitation: the relay must answer with the invitation's
//!   room; a direct room's peer is pinned to the inviter this user accepted,
//!   not to whoever the relay lists; the room's view is fetched fresh on next
//!   use (this user's keys come with the owner's statement naming them).
//!
//! [`RoomOperation`] is sans-I/O: [`RoomOperation::step`] says what it needs
//! ([`OpNeed`]): a call to the relay, an addressing run to its end (the
//! statements it posts), a warning shown; the driver answers and steps
//! again. The driver keeps the relay's answers and errors to return them.

use std::collections::VecDeque;

use uuid::Uuid;

use crate::address::Purpose;
use crate::membership::{Rooms, ViewFetch, Warning};

/// What the app asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomOp {
    /// A new group room with these members (this user is its owner).
    Create {
        /// The members besides this user.
        members: Vec<Uuid>,
    },
    /// The direct room with `peer` (existing or new).
    Direct {
        /// The other user.
        peer: Uuid,
    },
    /// Add `user` to `room` (as the owner): at once, or invited.
    Add {
        /// The room.
        room: Uuid,
        /// Who joins.
        user: Uuid,
    },
    /// Remove `user` from `room`, withdraw their invitation, or (this user)
    /// leave.
    Remove {
        /// The room.
        room: Uuid,
        /// Who goes.
        user: Uuid,
    },
    /// Accept the invitation `invitation` to `room` (as the relay listed it).
    Accept {
        /// The invitation.
        invitation: Uuid,
        /// Its room.
        room: Uuid,
        /// For a direct room, the inviter: the room's peer.
        direct_with: Option<Uuid>,
    },
}

impl From<&sotto_core::api::Invitation> for RoomOp {
    fn from(i: &sotto_core::api::Invitation) -> Self {
        Self::Accept {
            invitation: i.id,
            room: i.room_id,
            direct_with: (i.room_kind == sotto_core::api::RoomKind::Direct).then_some(i.inviter.id),
        }
    }
}

/// A call to the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `POST /rooms` with the app's name and no members; answer with the
    /// room's view.
    CreateRoom,
    /// `POST /rooms/direct` with this user; answer with the room's view.
    DirectRoom(Uuid),
    /// `POST /rooms/{room}/members` for `user`; answer [`Answer::Ok`].
    AddMember {
        /// The room.
        room: Uuid,
        /// Who.
        user: Uuid,
    },
    /// `DELETE /rooms/{room}/members/{user}`; answer [`Answer::Ok`].
    RemoveMember {
        /// The room.
        room: Uuid,
        /// Who.
        user: Uuid,
    },
    /// `GET /rooms/{room}`; answer with the room's view.
    GetRoom(Uuid),
    /// `POST /invitations/{id}/accept`; answer with the room's view.
    AcceptInvitation(Uuid),
}

/// A room as the relay describes it (what [`Rooms::observe_parts`] reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomView {
    /// The room.
    pub id: Uuid,
    /// Its `member_epoch` (0 from a relay before it).
    pub member_epoch: u64,
    /// A direct room.
    pub direct: bool,
    /// Its owner.
    pub owner: Uuid,
    /// The members the relay lists.
    pub members: Vec<Uuid>,
    /// The users invited.
    pub invited: Vec<Uuid>,
}

/// The relay's answer to a [`Call`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// It did it, and this is the room now.
    View(RoomView),
    /// It did it.
    Ok,
    /// It refused, or could not be reached: the driver keeps the error (the
    /// operation fails with it).
    Refused,
    /// An add refused because the user is a member or invited already
    /// (`already_member`, `already_invited`): they are listed, so the
    /// statement naming them stays (the driver keeps the error for an add).
    AlreadyListed,
}

/// What the operation needs next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpNeed {
    /// Make this call, then [`RoomOperation::answered`].
    Call(Call),
    /// Run the addressing of `room` for this purpose to its end (posting the
    /// statements it signs), then [`RoomOperation::addressed`] (on failure the
    /// driver keeps the addressing's error: it replaces one kept before).
    Address(Uuid, Purpose),
    /// Show the app this warning.
    Warn(Warning),
    /// Done: return the relay's last answer.
    Done,
    /// Failed: return the error kept.
    Failed,
}

/// What a step waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Create: the relay created the room.
    Created,
    /// Create or Add: the statement naming the members is posted.
    Statement,
    /// Create: the relay added `members[at]`.
    MemberAdded { at: usize, user: Uuid },
    /// Create: the fresh view at the end.
    Refetched,
    /// Create: the members from `at` on are withdrawn again, the refused one
    /// first (then the operation fails).
    Withdrawn { at: usize },
    /// Add: the refused member is withdrawn again (then the operation fails).
    WithdrawnOne,
    /// Direct: the relay's direct room with `peer`.
    Direct(Uuid),
    /// Add: the relay added `user`.
    Added(Uuid),
    /// Remove: the relay removed them (or refused).
    RelayRemoved,
    /// Remove: the owner's statement without them is posted.
    OwnerWithdrew { relay_ok: bool },
    /// Accept: the relay let this user in.
    Accepted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    /// Create: post the first statement, before anyone is added.
    PostFirst,
    /// Create: add the members from this index on.
    AddFrom(usize),
    /// Add: the statement is posted; ask the relay.
    AskAdd(Uuid),
    /// Add: withdraw the member the relay refused, then fail.
    WithdrawThenFail(Uuid),
    /// Create: withdraw the members from this index on (the relay refused
    /// one; the later ones were never asked), then fail.
    WithdrawFrom(usize),
    /// Remove: as the owner, post the statement without them.
    WithdrawAfterRemove(bool),
    Waiting(Wait),
    Done,
    Failed,
}

/// One room operation (see the module docs).
#[derive(Debug)]
pub struct RoomOperation {
    op: RoomOp,
    me: Uuid,
    state: State,
    room: Option<Uuid>,
    warnings: VecDeque<Warning>,
    /// The token of the call under way that answers with the room's view
    /// (create, direct, get): a view a room event or a new connection
    /// overtook is not observed (the next addressing fetches it).
    view_fetch: Option<ViewFetch>,
}

impl RoomOperation {
    /// The operation `op` as user `me`.
    pub fn new(me: Uuid, op: RoomOp) -> Self {
        // Each member once: a second add of the same user would be refused
        // (`already_member`) and must not withdraw the first.
        let op = match op {
            RoomOp::Create { members } => {
                let mut unique: Vec<Uuid> = Vec::with_capacity(members.len());
                for m in members {
                    if !unique.contains(&m) {
                        unique.push(m);
                    }
                }
                RoomOp::Create { members: unique }
            }
            other => other,
        };
        let room = match &op {
            RoomOp::Add { room, .. }
            | RoomOp::Remove { room, .. }
            | RoomOp::Accept { room, .. } => Some(*room),
            RoomOp::Create { .. } | RoomOp::Direct { .. } => None,
        };
        Self {
            op,
            me,
            state: State::Start,
            room,
            warnings: VecDeque::new(),
            view_fetch: None,
        }
    }

    /// The room, once known (Create and Direct: from the relay's answer).
    pub fn room(&self) -> Option<Uuid> {
        self.room
    }

    fn wait(&mut self, wait: Wait, need: OpNeed) -> OpNeed {
        self.state = State::Waiting(wait);
        need
    }

    /// Create: the first member besides this user from index `from` on.
    fn member_from(&self, from: usize) -> Option<(usize, Uuid)> {
        match &self.op {
            RoomOp::Create { members } => members
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, u)| **u != self.me)
                .map(|(at, u)| (at, *u)),
            _ => None,
        }
    }

    fn observe(&mut self, rooms: &mut Rooms, v: RoomView) {
        if let Some(fetch) = self.view_fetch.take() {
            self.warnings
                .extend(rooms.observe_fetched(fetch, v).unwrap_or_default());
        }
    }

    /// What to do next. The driver saves the rooms' changes
    /// ([`Rooms::take_changes`]) after every step, before acting on it.
    /// Asked again before the driver answered, the operation fails.
    pub fn step(&mut self, rooms: &mut Rooms) -> OpNeed {
        let need = self.next(rooms);
        self.view_fetch = matches!(
            need,
            OpNeed::Call(Call::CreateRoom | Call::DirectRoom(_) | Call::GetRoom(_))
        )
        .then(|| rooms.fetching_view());
        need
    }

    fn next(&mut self, rooms: &mut Rooms) -> OpNeed {
        if let Some(w) = self.warnings.pop_front() {
            return OpNeed::Warn(w);
        }
        let room = self.room;
        match (self.state, room) {
            (State::Start, _) => match self.op.clone() {
                RoomOp::Create { .. } => self.wait(Wait::Created, OpNeed::Call(Call::CreateRoom)),
                RoomOp::Direct { peer } => {
                    self.wait(Wait::Direct(peer), OpNeed::Call(Call::DirectRoom(peer)))
                }
                RoomOp::Add { room, user } => {
                    // As the owner, the statement naming them goes first (a
                    // non-owner's add the relay refuses: let it say so).
                    self.wait(Wait::Statement, OpNeed::Address(room, Purpose::Add(user)))
                }
                RoomOp::Remove { room, user } => self.wait(
                    Wait::RelayRemoved,
                    OpNeed::Call(Call::RemoveMember { room, user }),
                ),
                RoomOp::Accept {
                    invitation,
                    room,
                    direct_with,
                } => {
                    // Pinned before the relay is asked: its room events for
                    // this join may be seen (and the room fetched) before its
                    // answer, and the first sight must not pin whoever it lists.
                    if let Some(peer) = direct_with {
                        rooms.expect_peer(room, peer);
                    }
                    self.wait(
                        Wait::Accepted,
                        OpNeed::Call(Call::AcceptInvitation(invitation)),
                    )
                }
            },
            (State::PostFirst, Some(room)) => match &self.op {
                RoomOp::Create { members } => {
                    let members = members.clone();
                    self.wait(
                        Wait::Statement,
                        OpNeed::Address(room, Purpose::Create(members)),
                    )
                }
                _ => self.finish(false),
            },
            (State::AddFrom(from), Some(room)) => {
                match self.member_from(from) {
                    Some((at, user)) => self.wait(
                        Wait::MemberAdded { at, user },
                        OpNeed::Call(Call::AddMember { room, user }),
                    ),
                    // The members are in: the room's view as it is now, fetched fresh.
                    None => self.wait(Wait::Refetched, OpNeed::Call(Call::GetRoom(room))),
                }
            }
            (State::AskAdd(user), Some(room)) => self.wait(
                Wait::Added(user),
                OpNeed::Call(Call::AddMember { room, user }),
            ),
            (State::WithdrawThenFail(user), Some(room)) => {
                // The statement must not keep naming someone who never joined.
                self.wait(
                    Wait::WithdrawnOne,
                    OpNeed::Address(room, Purpose::Withdraw(user)),
                )
            }
            (State::WithdrawFrom(from), Some(room)) => {
                // Every member not added: the refused one and those never asked.
                match self.member_from(from) {
                    Some((at, user)) => self.wait(
                        Wait::Withdrawn { at },
                        OpNeed::Address(room, Purpose::Withdraw(user)),
                    ),
                    None => self.finish(false),
                }
            }
            (State::WithdrawAfterRemove(relay_ok), Some(room)) => match self.op {
                RoomOp::Remove { user, .. } if user != self.me => self.wait(
                    Wait::OwnerWithdrew { relay_ok },
                    OpNeed::Address(room, Purpose::Withdraw(user)),
                ),
                _ => self.finish(relay_ok),
            },
            (State::Done, _) => OpNeed::Done,
            (State::Failed, _) | (State::Waiting(_), _) | (_, None) => self.finish(false),
        }
    }

    fn finish(&mut self, ok: bool) -> OpNeed {
        if ok {
            self.state = State::Done;
            OpNeed::Done
        } else {
            self.state = State::Failed;
            OpNeed::Failed
        }
    }

    /// The relay's answer to the [`OpNeed::Call`] of the last step.
    pub fn answered(&mut self, rooms: &mut Rooms, answer: Answer) {
        let State::Waiting(wait) = self.state else {
            return;
        };
        // (`AlreadyListed`: for a create, the member is there: as added.)
        let ok = answer != Answer::Refused;
        self.state = match (wait, answer) {
            (Wait::Created, Answer::View(v)) => {
                self.room = Some(v.id);
                // This device created it: it signs the first statement.
                rooms.created(v.id);
                self.observe(rooms, v);
                State::PostFirst
            }
            (Wait::MemberAdded { at, user }, _) if ok => {
                if let Some(room) = self.room {
                    // Listed from now on: a later view without them signs them out.
                    rooms.added(room, user);
                }
                State::AddFrom(at + 1)
            }
            (Wait::MemberAdded { at, .. }, _) => State::WithdrawFrom(at),
            (Wait::Refetched, Answer::View(v)) if Some(v.id) == self.room => {
                self.observe(rooms, v);
                State::Done
            }
            (Wait::Direct(peer), Answer::View(v)) => {
                self.room = Some(v.id);
                // Its peer is `peer` now, not whoever the relay lists first.
                rooms.expect_peer(v.id, peer);
                self.observe(rooms, v);
                State::Done
            }
            (Wait::Added(user), answer) => {
                if let Some(room) = self.room {
                    rooms.forget_relay_view(Some(room));
                    if ok {
                        rooms.added(room, user);
                    }
                }
                match answer {
                    Answer::Refused => State::WithdrawThenFail(user),
                    // Listed already: the statement naming them stays; the
                    // caller hears the relay's answer.
                    Answer::AlreadyListed => State::Failed,
                    Answer::Ok | Answer::View(_) => State::Done,
                }
            }
            (Wait::RelayRemoved, _) => {
                rooms.forget_relay_view(self.room);
                State::WithdrawAfterRemove(ok)
            }
            (Wait::Accepted, Answer::View(v)) if Some(v.id) == self.room => {
                // Its live events may still be on their way: fetched fresh on next use.
                rooms.forget_relay_view(self.room);
                State::Done
            }
            _ => State::Failed,
        };
    }

    /// The addressing asked by the last step ended (`ok`: it did; else the
    /// driver keeps its error).
    pub fn addressed(&mut self, ok: bool) {
        let State::Waiting(wait) = self.state else {
            return;
        };
        self.state = match (wait, ok, &self.op) {
            // Each withdrawal in turn, whatever the last one did (its error is kept).
            (Wait::Withdrawn { at }, _, _) => State::WithdrawFrom(at + 1),
            (Wait::Statement, true, RoomOp::Create { .. }) => State::AddFrom(0),
            (Wait::Statement, true, RoomOp::Add { user, .. }) => State::AskAdd(*user),
            (Wait::OwnerWithdrew { relay_ok }, true, _) => {
                if relay_ok {
                    State::Done
                } else {
                    State::Failed
                }
            }
            _ => State::Failed,
        };
    }
}

impl Answer {
    /// A refusal with this problem code: [`Answer::AlreadyListed`] for
    /// `already_member` and `already_invited`, else [`Answer::Refused`].
    pub fn refusal(code: Option<&str>) -> Self {
        use sotto_core::api::codes::{ALREADY_INVITED, ALREADY_MEMBER};
        match code {
            Some(ALREADY_MEMBER | ALREADY_INVITED) => Self::AlreadyListed,
            _ => Self::Refused,
        }
    }
}

impl From<&sotto_core::api::RoomDetails> for RoomView {
    fn from(d: &sotto_core::api::RoomDetails) -> Self {
        Self {
            id: d.room.id,
            member_epoch: d.room.member_epoch,
            direct: d.room.kind == sotto_core::api::RoomKind::Direct,
            owner: d.room.owner_id,
            members: d.members.iter().map(|m| m.user_id).collect(),
            invited: d.invited.iter().map(|i| i.user_id).collect(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    const ME: Uuid = Uuid::from_u128(1);
    const BOB: Uuid = Uuid::from_u128(2);
    const CAROL: Uuid = Uuid::from_u128(3);
    const MALLORY: Uuid = Uuid::from_u128(4);
    const ROOM: Uuid = Uuid::from_u128(0x700);

    fn view(direct: bool, owner: Uuid, members: &[Uuid]) -> RoomView {
        RoomView {
            id: ROOM,
            member_epoch: 1,
            direct,
            owner,
            members: members.to_vec(),
            invited: vec![],
        }
    }

    /// Steps `op` through the given answers; the needs it asked, in order.
    fn run(rooms: &mut Rooms, op: RoomOp, mut answers: Vec<Answer>, ok: &[bool]) -> Vec<OpNeed> {
        let mut op = RoomOperation::new(ME, op);
        let mut asked = Vec::new();
        let mut addressed = ok.iter();
        answers.reverse();
        for _ in 0..20 {
            let need = op.step(rooms);
            asked.push(need.clone());
            match need {
                OpNeed::Call(_) => op.answered(rooms, answers.pop().unwrap()),
                OpNeed::Address(..) => op.addressed(*addressed.next().unwrap()),
                OpNeed::Warn(_) => {}
                OpNeed::Done | OpNeed::Failed => return asked,
            }
        }
        panic!("no end: {asked:?}");
    }

    #[test]
    fn create_posts_the_statement_before_adding_and_withdraws_a_refused_member() {
        let mut rooms = Rooms::load(ME, []);
        let asked = run(
            &mut rooms,
            RoomOp::Create {
                members: vec![BOB, ME, CAROL],
            },
            vec![
                Answer::View(view(false, ME, &[ME])),
                Answer::Ok,
                Answer::Refused,
            ],
            &[true, true],
        );
        assert_eq!(
            asked,
            vec![
                OpNeed::Call(Call::CreateRoom),
                OpNeed::Address(ROOM, Purpose::Create(vec![BOB, ME, CAROL])),
                OpNeed::Call(Call::AddMember {
                    room: ROOM,
                    user: BOB
                }),
                OpNeed::Call(Call::AddMember {
                    room: ROOM,
                    user: CAROL
                }),
                OpNeed::Address(ROOM, Purpose::Withdraw(CAROL)),
                OpNeed::Failed,
            ]
        );
        assert!(
            rooms.record(ROOM).is_some(),
            "created: this device signs it"
        );
    }

    #[test]
    fn a_refused_create_withdraws_every_member_not_added_and_adds_each_once() {
        const DAVE: Uuid = Uuid::from_u128(5);
        let mut rooms = Rooms::load(ME, []);
        let asked = run(
            &mut rooms,
            RoomOp::Create {
                members: vec![BOB, CAROL, BOB, DAVE],
            },
            vec![
                Answer::View(view(false, ME, &[ME])),
                Answer::Ok,
                Answer::Refused,
            ],
            &[true, true, false],
        );
        assert_eq!(
            &asked[1..],
            &[
                OpNeed::Address(ROOM, Purpose::Create(vec![BOB, CAROL, DAVE])),
                OpNeed::Call(Call::AddMember {
                    room: ROOM,
                    user: BOB
                }),
                OpNeed::Call(Call::AddMember {
                    room: ROOM,
                    user: CAROL
                }),
                OpNeed::Address(ROOM, Purpose::Withdraw(CAROL)),
                OpNeed::Address(ROOM, Purpose::Withdraw(DAVE)),
                OpNeed::Failed,
            ],
            "Dave was never asked: not left named (even after a failed withdrawal before)"
        );
        // A member the relay lists already (`already_member`) counts as added.
        let mut rooms = Rooms::load(ME, []);
        let asked = run(
            &mut rooms,
            RoomOp::Create { members: vec![BOB] },
            vec![
                Answer::View(view(false, ME, &[ME])),
                Answer::AlreadyListed,
                Answer::View(view(false, ME, &[ME, BOB])),
            ],
            &[true],
        );
        assert_eq!(asked.last(), Some(&OpNeed::Done));
    }

    #[test]
    fn create_ends_with_a_fresh_view_of_that_room_only() {
        let mut rooms = Rooms::load(ME, []);
        let answers = || {
            vec![
                Answer::View(view(false, ME, &[ME])),
                Answer::Ok,
                Answer::View(view(false, ME, &[ME, BOB])),
            ]
        };
        let asked = run(
            &mut rooms,
            RoomOp::Create { members: vec![BOB] },
            answers(),
            &[true],
        );
        assert_eq!(asked.get(3), Some(&OpNeed::Call(Call::GetRoom(ROOM))));
        assert_eq!(asked.last(), Some(&OpNeed::Done));
        assert!(rooms.knows(ROOM));
        // The relay answers the last fetch with another room: no success.
        let mut rooms = Rooms::load(ME, []);
        let mut a = answers();
        if let Some(Answer::View(v)) = a.last_mut() {
            v.id = Uuid::from_u128(0x701);
        }
        let asked = run(
            &mut rooms,
            RoomOp::Create { members: vec![BOB] },
            a,
            &[true],
        );
        assert_eq!(asked.last(), Some(&OpNeed::Failed));
        // The first statement failed: nobody is added.
        let mut rooms = Rooms::load(ME, []);
        let asked = run(
            &mut rooms,
            RoomOp::Create { members: vec![BOB] },
            answers(),
            &[false],
        );
        assert_eq!(asked.len(), 3);
        assert_eq!(asked.last(), Some(&OpNeed::Failed));
    }

    #[test]
    fn a_direct_room_is_pinned_to_the_peer_asked_for() {
        let mut rooms = Rooms::load(ME, []);
        let asked = run(
            &mut rooms,
            RoomOp::Direct { peer: BOB },
            vec![Answer::View(view(true, ME, &[ME, MALLORY]))],
            &[],
        );
        assert_eq!(asked.first(), Some(&OpNeed::Call(Call::DirectRoom(BOB))));
        assert!(
            asked
                .iter()
                .any(|n| matches!(n, OpNeed::Warn(Warning::DirectRoomTampered { .. }))),
            "the relay listed someone else: {asked:?}"
        );
        assert_eq!(asked.last(), Some(&OpNeed::Done));
    }

    #[test]
    fn add_posts_first_and_withdraws_when_the_relay_refuses() {
        let mut rooms = Rooms::load(ME, []);
        let op = || RoomOp::Add {
            room: ROOM,
            user: BOB,
        };
        let asked = run(&mut rooms, op(), vec![Answer::Ok], &[true]);
        assert_eq!(
            asked,
            vec![
                OpNeed::Address(ROOM, Purpose::Add(BOB)),
                OpNeed::Call(Call::AddMember {
                    room: ROOM,
                    user: BOB
                }),
                OpNeed::Done,
            ]
        );
        let asked = run(&mut rooms, op(), vec![Answer::Refused], &[true, true]);
        assert_eq!(
            asked.get(2),
            Some(&OpNeed::Address(ROOM, Purpose::Withdraw(BOB)))
        );
        assert_eq!(asked.last(), Some(&OpNeed::Failed));
        // Listed already (a lost answer, a second click): not withdrawn.
        let asked = run(&mut rooms, op(), vec![Answer::AlreadyListed], &[true]);
        assert_eq!(asked.len(), 3);
        assert_eq!(asked.last(), Some(&OpNeed::Failed));
        // The statement could not be posted: the relay is not asked.
        let asked = run(&mut rooms, op(), vec![], &[false]);
        assert_eq!(asked.len(), 2);
        assert_eq!(asked.last(), Some(&OpNeed::Failed));
    }

    #[test]
    fn remove_posts_the_statement_whatever_the_relay_answered() {
        let mut rooms = Rooms::load(ME, []);
        let op = |user| RoomOp::Remove { room: ROOM, user };
        rooms.observe_parts(ROOM, 1, false, ME, vec![ME, BOB], vec![]);
        let fetch = rooms.fetching_view();
        let asked = run(&mut rooms, op(BOB), vec![Answer::Refused], &[true]);
        assert_eq!(
            asked,
            vec![
                OpNeed::Call(Call::RemoveMember {
                    room: ROOM,
                    user: BOB
                }),
                OpNeed::Address(ROOM, Purpose::Withdraw(BOB)),
                OpNeed::Failed,
            ]
        );
        assert!(!rooms.knows(ROOM), "the view is fetched again");
        assert!(
            rooms.view_overtaken(fetch),
            "a view fetched before is stale"
        );
        let asked = run(&mut rooms, op(BOB), vec![Answer::Ok], &[true]);
        assert_eq!(asked.last(), Some(&OpNeed::Done));
        // Leaving: no statement of this user's.
        let asked = run(&mut rooms, op(ME), vec![Answer::Ok], &[]);
        assert_eq!(asked.len(), 2);
        assert_eq!(asked.last(), Some(&OpNeed::Done));
    }

    #[test]
    fn accepting_a_direct_invitation_pins_the_inviter_and_the_room_must_match() {
        const INVITATION: Uuid = Uuid::from_u128(0x1417);
        let accept = |direct_with| RoomOp::Accept {
            invitation: INVITATION,
            room: ROOM,
            direct_with,
        };
        let mut rooms = Rooms::load(ME, []);
        // The relay answers with another room: the operation fails.
        let other = RoomView {
            id: Uuid::from_u128(0x701),
            ..view(true, BOB, &[BOB, ME])
        };
        let asked = run(
            &mut rooms,
            accept(Some(BOB)),
            vec![Answer::View(other)],
            &[],
        );
        assert_eq!(
            asked.first(),
            Some(&OpNeed::Call(Call::AcceptInvitation(INVITATION)))
        );
        assert_eq!(asked.last(), Some(&OpNeed::Failed));
        // The relay lets this user in, listing Mallory as the other member:
        // the peer is Bob, who invited, and the view is fetched fresh.
        let asked = run(
            &mut rooms,
            accept(Some(BOB)),
            vec![Answer::View(view(true, BOB, &[MALLORY, ME]))],
            &[],
        );
        assert_eq!(asked.last(), Some(&OpNeed::Done));
        assert_eq!(rooms.record(ROOM).and_then(|r| r.peer), Some(BOB));
        assert!(!rooms.knows(ROOM), "fetched fresh on next use");
        let warnings = rooms.observe_view(view(true, BOB, &[MALLORY, ME]));
        assert!(
            warnings
                .iter()
                .any(|w| matches!(w, Warning::DirectRoomTampered { .. })),
            "{warnings:?}"
        );
        // The relay's room events for the join come first, and the room is
        // fetched before the accept's answer: the inviter is pinned already.
        let mut rooms = Rooms::load(ME, []);
        let mut op = RoomOperation::new(ME, accept(Some(BOB)));
        assert_eq!(
            op.step(&mut rooms),
            OpNeed::Call(Call::AcceptInvitation(INVITATION))
        );
        let warnings = rooms.observe_view(view(true, BOB, &[MALLORY, ME]));
        assert!(
            warnings
                .iter()
                .any(|w| matches!(w, Warning::DirectRoomTampered { .. })),
            "seen before the answer: {warnings:?}"
        );
        assert_eq!(rooms.record(ROOM).and_then(|r| r.peer), Some(BOB));
        op.answered(&mut rooms, Answer::View(view(true, BOB, &[MALLORY, ME])));
        assert_eq!(op.step(&mut rooms), OpNeed::Done);
        assert_eq!(rooms.record(ROOM).and_then(|r| r.peer), Some(BOB));
        // A group room's invitation pins nobody.
        let mut rooms = Rooms::load(ME, []);
        let asked = run(
            &mut rooms,
            accept(None),
            vec![Answer::View(view(false, BOB, &[BOB, ME]))],
            &[],
        );
        assert_eq!(asked.last(), Some(&OpNeed::Done));
        assert!(rooms.record(ROOM).and_then(|r| r.peer).is_none());
    }

    #[test]
    fn a_step_without_an_answer_fails() {
        let mut rooms = Rooms::load(ME, []);
        let mut op = RoomOperation::new(ME, RoomOp::Direct { peer: BOB });
        assert!(matches!(op.step(&mut rooms), OpNeed::Call(_)));
        assert_eq!(op.step(&mut rooms), OpNeed::Failed);
    }

    #[test]
    fn a_view_answer_a_room_event_overtook_is_not_observed() {
        let mut rooms = Rooms::load(ME, []);
        let mut op = RoomOperation::new(ME, RoomOp::Direct { peer: BOB });
        assert_eq!(op.step(&mut rooms), OpNeed::Call(Call::DirectRoom(BOB)));
        // A new connection before the answer: the answer may be older.
        rooms.forget_relay_view(None);
        op.answered(&mut rooms, Answer::View(view(true, BOB, &[ME, BOB])));
        assert_eq!(op.step(&mut rooms), OpNeed::Done);
        assert!(!rooms.knows(ROOM), "fetched again on next use");
        assert_eq!(rooms.record(ROOM).and_then(|r| r.peer), Some(BOB));
        // Not overtaken: observed.
        let mut rooms = Rooms::load(ME, []);
        let mut op = RoomOperation::new(ME, RoomOp::Direct { peer: BOB });
        op.step(&mut rooms);
        op.answered(&mut rooms, Answer::View(view(true, BOB, &[ME, BOB])));
        assert!(rooms.knows(ROOM));
    }
}
