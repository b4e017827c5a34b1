//! Golden bytes: the exact encodings of the signed record body and of every wire message.
//! Stored records are signed over their encoding, and peers of other versions read these
//! messages, so a change that alters any of these bytes (a reordered field, a new enum
//! variant in the middle, a serde attribute) must fail here and be made on purpose, with a new
//! format or protocol version (docs/protocol.md).

use std::collections::BTreeMap;

use sha2::Digest;
use td_engine::authority::{Op, Role};
use td_engine::record::{RecordBody, PLAIN_FORMAT};
use td_engine::sync::wire::{encode, Message, WireRun};
use td_transport::auth::AuthMessage;

fn body() -> RecordBody {
    RecordBody {
        format: PLAIN_FORMAT,
        project: "prj_0123456789abcdef_abcdef".into(),
        doc: "td-c0ffee".into(),
        actor: [0x11; 16],
        seq: 300,
        prev: [0x22; 32],
        session: "ses_a1b2c3d4_s1".into(),
        author: [0x33; 32],
        change: vec![0x85, 0x6f, 0x4a, 0x83, 1, 2, 3],
    }
}

fn run() -> WireRun {
    WireRun {
        format: PLAIN_FORMAT,
        actor: [0x11; 16],
        author: [0x33; 32],
        session: "ses_a1b2c3d4_s1".into(),
        first_seq: 300,
        changes: vec![
            ("td-c0ffee".into(), vec![1, 2]),
            ("cm-0000aa".into(), vec![3]),
        ],
        signature: vec![0x44; 64],
    }
}

#[track_caller]
fn golden(what: &str, bytes: &[u8], want: &str) {
    assert_eq!(hex::encode(bytes), want, "the encoding of {what} changed");
}

#[test]
fn the_signed_record_body_encodes_byte_for_byte() {
    let encoded = postcard::to_stdvec(&body()).unwrap();
    golden("RecordBody", &encoded, "011b70726a5f303132333435363738396162636465665f6162636465660974642d63306666656511111111111111111111111111111111ac0222222222222222222222222222222222222222222222222222222222222222220f7365735f61316232633364345f7331333333333333333333333333333333333333333333333333333333333333333307856f4a83010203");
    // The hash every signature covers.
    golden(
        "RecordBody hash",
        &sha2::Sha256::digest(&encoded),
        "5e1b7699627df88b4f0df836660a8516a9193f10e4dc66146cc74d067ae82e83",
    );
}

#[test]
fn every_sync_message_encodes_byte_for_byte() {
    let hello = Message::Hello {
        min_version: 1,
        max_version: 1,
        project: "prj_0123456789abcdef_abcdef".into(),
        fresh: false,
        summary: vec![([0x11; 16], 300), ([0x55; 16], 2)],
    };
    golden("Hello", &encode(&hello), "000000440001011b70726a5f303132333435363738396162636465665f616263646566000211111111111111111111111111111111ac025555555555555555555555555555555502");
    golden("Batch", &encode(&Message::Batch { runs: vec![run()] }), "000000a00101011111111111111111111111111111111133333333333333333333333333333333333333333333333333333333333333330f7365735f61316232633364345f7331ac02020974642d63306666656502010209636d2d30303030616101034044444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444");
    let ack = Message::Ack {
        applied: 2,
        rejected: vec!["held: 1".into()],
    };
    golden("Ack", &encode(&ack), "0000000b0202010768656c643a2031");
    golden(
        "Done",
        &encode(&Message::Done { sent: 70000 }),
        "0000000403f0a204",
    );
    let err = Message::Error {
        code: "not_a_member".into(),
        message: "no".into(),
    };
    golden(
        "Error",
        &encode(&err),
        "00000011040c6e6f745f615f6d656d626572026e6f",
    );
}

#[test]
fn every_handshake_message_encodes_byte_for_byte() {
    let prove = AuthMessage::Prove {
        key: [0x66; 32],
        signature: vec![0x77; 64],
    };
    golden("Prove", &postcard::to_stdvec(&prove).unwrap(), "0066666666666666666666666666666666666666666666666666666666666666664077777777777777777777777777777777777777777777777777777777777777777777777777777777777777777777777777777777777777777777777777777777");
    golden(
        "Accept",
        &postcard::to_stdvec(&AuthMessage::Accept).unwrap(),
        "01",
    );
    let refuse = AuthMessage::Refuse {
        message: "not a member".into(),
    };
    golden(
        "Refuse",
        &postcard::to_stdvec(&refuse).unwrap(),
        "020c6e6f742061206d656d626572",
    );
}

#[test]
fn roster_operations_serialize_exactly() {
    let key = "ab".repeat(32);
    let mut cutoff = BTreeMap::new();
    cutoff.insert("11".repeat(16), 7u64);
    let c = "11".repeat(16);
    let ops = [
        (
            Op::Found {
                name: "alice".into(),
            },
            r#"{"op":"found","name":"alice"}"#.to_string(),
        ),
        (
            Op::Add {
                key: key.clone(),
                role: Role::Admin,
                name: "bob".into(),
            },
            format!(r#"{{"op":"add","key":"{key}","role":"admin","name":"bob"}}"#),
        ),
        (
            Op::SetRole {
                key: key.clone(),
                role: Role::Member,
            },
            format!(r#"{{"op":"set_role","key":"{key}","role":"member"}}"#),
        ),
        (
            Op::Invite {
                id: key.clone(),
                role: Role::Member,
                name: "ci".into(),
                expires: 1_800_000_000,
                keys: String::new(),
            },
            format!(
                r#"{{"op":"invite","id":"{key}","role":"member","name":"ci","expires":1800000000}}"#
            ),
        ),
        (
            Op::Invite {
                id: key.clone(),
                role: Role::Member,
                name: "ci".into(),
                expires: 1_800_000_000,
                keys: "ab".into(),
            },
            format!(
                r#"{{"op":"invite","id":"{key}","role":"member","name":"ci","expires":1800000000,"keys":"ab"}}"#
            ),
        ),
        (
            Op::Join {
                invite: key.clone(),
                key: key.clone(),
                proof: "cd".into(),
                on: vec!["ef".into()],
            },
            format!(r#"{{"op":"join","invite":"{key}","key":"{key}","proof":"cd","on":["ef"]}}"#),
        ),
        (
            Op::RevokeInvite {
                invite: key.clone(),
            },
            format!(r#"{{"op":"revoke_invite","invite":"{key}"}}"#),
        ),
        (
            Op::Remove {
                key: key.clone(),
                cutoff,
            },
            format!(r#"{{"op":"remove","key":"{key}","cutoff":{{"{c}":7}}}}"#),
        ),
    ];
    for (op, want) in ops {
        assert_eq!(serde_json::to_string(&op).unwrap(), want);
        assert_eq!(
            serde_json::from_str::<Op>(&want).unwrap(),
            op,
            "and reads back"
        );
    }
}
