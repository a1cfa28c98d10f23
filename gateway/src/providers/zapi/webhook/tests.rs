//! The Z-API parser on callbacks in the shapes of Z-API's documentation
//! (developer.z-api.io/en/webhooks), including the odd ones: the `ReceivedCallBack` spelling,
//! notifications, groups, several ids in one status callback, `momment` in seconds.

use super::*;
use serde_json::json;

const INSTANCE: &str = "A20DA9C0183A2D35A260F53F5D2B9244";

fn received(content: Value) -> Vec<u8> {
    let mut callback = json!({
        "isStatusReply": false, "senderLid": "81896604192873@lid", "connectedPhone": "554499999999",
        "waitingMessage": false, "isEdit": false, "isGroup": false, "isNewsletter": false,
        "instanceId": INSTANCE, "messageId": "3EB0C431C26A1916E07A", "phone": "5544999999999",
        "fromMe": false, "momment": 1632228638000_i64, "status": "RECEIVED", "chatName": "Maria",
        "senderPhoto": "https://pps.whatsapp.net/x.jpg", "senderName": "Maria",
        "participantPhone": null, "participantLid": null, "photo": "https://pps.whatsapp.net/x.jpg",
        "broadcast": false, "type": "ReceivedCallback"
    });
    if let (Some(map), Value::Object(extra)) = (callback.as_object_mut(), content) {
        map.extend(extra);
    }
    serde_json::to_vec(&callback).expect("json")
}

fn only_message(body: &[u8]) -> InboundMessage {
    let parsed = parse(body).expect("parses");
    assert_eq!(parsed.instance.as_deref(), Some(INSTANCE));
    match parsed.events.as_slice() {
        [InboundEvent::Message(m)] => m.clone(),
        other => panic!("expected one message, got {other:?}"),
    }
}

#[test]
fn received_text_becomes_an_inbound_message() {
    let m = only_message(&received(json!({"text": {"message": "Olá, tudo bem?"}})));
    assert_eq!(m.provider_message_id, "3EB0C431C26A1916E07A");
    assert_eq!(m.from.address, "5544999999999");
    assert_eq!(m.from.name.as_deref(), Some("Maria"));
    assert_eq!(
        m.content,
        MessageContent::Text {
            body: "Olá, tudo bem?".into()
        }
    );
    assert_eq!(
        m.sent_at,
        Timestamp::from_millisecond(1632228638000).expect("ts")
    );
}

#[test]
fn media_arrive_as_z_api_file_urls() {
    let image = only_message(&received(json!({"image": {"mimeType": "image/jpeg",
        "imageUrl": "https://storage.z-api.io/img.jpeg", "thumbnailUrl": "https://storage.z-api.io/t.jpeg",
        "downloadError": null, "caption": "Comprovante", "width": 600, "height": 315, "viewOnce": false}})));
    assert_eq!(
        image.content,
        MessageContent::Media {
            kind: MediaKind::Image,
            media_id: "https://storage.z-api.io/img.jpeg".into(),
            mime_type: Some("image/jpeg".into()),
            sha256: None,
            caption: Some("Comprovante".into()),
            filename: None,
            voice: false,
            animated: false,
        }
    );
    let audio = only_message(&received(json!({"audio": {"ptt": true, "seconds": 10,
        "audioUrl": "https://storage.z-api.io/a.ogg", "mimeType": "audio/ogg; codecs=opus"}})));
    assert!(matches!(
        audio.content,
        MessageContent::Media {
            kind: MediaKind::Audio,
            voice: true,
            ..
        }
    ));
    let document = only_message(&received(
        json!({"document": {"documentUrl": "https://storage.z-api.io/d.pdf",
        "mimeType": "application/pdf", "title": "boleto", "pageCount": 1, "fileName": "boleto.pdf"}}),
    ));
    assert!(matches!(document.content,
        MessageContent::Media { kind: MediaKind::Document, filename: Some(ref f), .. } if f == "boleto.pdf"));
}

#[test]
fn location_contact_and_reaction_are_understood() {
    let location = only_message(&received(json!({"location": {"longitude": -46.6388,
        "latitude": -23.5489, "address": "Av. Paulista, 1000", "url": ""}})));
    assert!(
        matches!(location.content, MessageContent::Location { longitude, .. } if longitude == -46.6388)
    );
    let contact = only_message(&received(json!({"contact": {"displayName": "Cesar Baleco",
        "vCard": "BEGIN:VCARD\nEND:VCARD", "phones": ["5544999999999"]}})));
    assert!(matches!(contact.content,
        MessageContent::Contacts { ref contacts } if contacts[0].phones == vec!["5544999999999".to_string()]));
    let reaction = only_message(&received(
        json!({"reaction": {"value": "❤️", "time": 1651878681150_i64,
        "reactionBy": "554499999999", "referencedMessage": {"messageId": "3EB0796DC6B777C0C7CD",
        "fromMe": true, "phone": "5544999999999", "participant": null}}}),
    ));
    assert_eq!(
        reaction.content,
        MessageContent::Reaction {
            target: "3EB0796DC6B777C0C7CD".into(),
            emoji: "❤️".into()
        }
    );
}

#[test]
fn unknown_content_is_kept_as_unsupported() {
    let poll = only_message(&received(json!({"poll": {"question": "Qual horário?"}})));
    assert!(
        matches!(poll.content, MessageContent::Unsupported { ref raw, .. } if raw["poll"]["question"] == "Qual horário?")
    );
}

#[test]
fn sent_by_me_is_an_echo_and_groups_keep_their_id() {
    let mut mine: Value =
        serde_json::from_slice(&received(json!({"text": {"message": "Saiu"}}))).expect("json");
    mine["fromMe"] = json!(true);
    mine["fromApi"] = json!(true);
    let parsed = parse(&serde_json::to_vec(&mine).expect("json")).expect("parses");
    assert!(matches!(parsed.events.as_slice(), [InboundEvent::Echo(_)]));
    let mut group: Value =
        serde_json::from_slice(&received(json!({"text": {"message": "Bom dia"}}))).expect("json");
    group["phone"] = json!("120363019502650977-group");
    group["isGroup"] = json!(true);
    group["participantPhone"] = json!("5544988888888");
    group["chatName"] = json!("Clientes VIP");
    group["senderName"] = json!("Bia");
    let m = only_message(&serde_json::to_vec(&group).expect("json"));
    assert_eq!(m.from.address, "120363019502650977-group");
    assert_eq!(
        m.from.name.as_deref(),
        Some("Clientes VIP"),
        "the group's name"
    );
    let sender = m.sender.expect("the member who wrote");
    assert_eq!(
        (sender.address.as_str(), sender.name.as_deref()),
        ("5544988888888", Some("Bia"))
    );
}

#[test]
fn notifications_and_the_other_spelling_are_handled() {
    let mut notification: Value = serde_json::from_slice(&received(json!({}))).expect("json");
    notification["notification"] = json!("CALL_MISSED_VOICE");
    let parsed = parse(&serde_json::to_vec(&notification).expect("json")).expect("parses");
    assert_eq!((parsed.events.len(), parsed.ignored), (0, 1));
    let mut spelled: Value =
        serde_json::from_slice(&received(json!({"text": {"message": "oi"}}))).expect("json");
    spelled["type"] = json!("ReceivedCallBack");
    only_message(&serde_json::to_vec(&spelled).expect("json"));
}

#[test]
fn one_status_callback_moves_every_id_it_names() {
    let body = serde_json::to_vec(&json!({"instanceId": INSTANCE, "status": "READ",
        "ids": ["D241XXXX732339502B68", "D241XXXX732339502B69"], "momment": 1632234699000_i64,
        "phoneDevice": 0, "phone": "5544999999999", "type": "MessageStatusCallback", "isGroup": false}))
    .expect("json");
    let parsed = parse(&body).expect("parses");
    let ids: Vec<_> = parsed
        .events
        .iter()
        .map(|e| match e {
            InboundEvent::Status(s) => {
                assert_eq!(s.status, MessageStatus::Read);
                assert_eq!(s.recipient, "5544999999999");
                s.provider_message_id.clone()
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, ["D241XXXX732339502B68", "D241XXXX732339502B69"]);
    for (raw, expected) in [
        ("SENT", MessageStatus::Sent),
        ("RECEIVED", MessageStatus::Delivered),
        ("PLAYED", MessageStatus::Read),
    ] {
        let body = serde_json::to_vec(&json!({"instanceId": INSTANCE, "status": raw, "ids": ["X"],
            "phone": "5544999999999", "type": "MessageStatusCallback"}))
        .expect("json");
        assert!(
            matches!(parse(&body).expect("parses").events.as_slice(), [InboundEvent::Status(s)] if s.status == expected)
        );
    }
    let mine = serde_json::to_vec(
        &json!({"instanceId": INSTANCE, "status": "READ_BY_ME", "ids": ["X"],
        "phone": "5544999999999", "type": "MessageStatusCallback"}),
    )
    .expect("json");
    assert!(parse(&mine).expect("parses").events.is_empty());
}

#[test]
fn connected_and_disconnected_callbacks_change_the_session() {
    let connected = serde_json::to_vec(&json!({"type": "ConnectedCallback", "connected": true,
        "momment": 1717689097000_i64, "instanceId": INSTANCE, "phone": "554499999999"}))
    .expect("json");
    assert_eq!(
        parse(&connected).expect("parses").session,
        Some(SessionChange::Status(ConnectionStatus::Connected))
    );
    // The docs' example gives `momment` in seconds here.
    let disconnected = serde_json::to_vec(
        &json!({"momment": 1580163342, "error": "Device has been disconnected",
        "disconnected": true, "type": "DisconnectedCallback", "instanceId": INSTANCE}),
    )
    .expect("json");
    assert_eq!(
        parse(&disconnected).expect("parses").session,
        Some(SessionChange::Status(ConnectionStatus::Disconnected))
    );
    assert_eq!(
        millis(Some(&json!(1580163342))),
        Timestamp::from_second(1580163342).expect("ts")
    );
}

#[test]
fn malformed_callbacks_are_refused() {
    assert!(parse(b"[]").is_err());
    assert!(parse(br#"{"phone":"1"}"#).is_err());
    assert!(parse(br#"{"type":"ReceivedCallback","phone":"1"}"#).is_err());
    assert!(parse(br#"{"type":"MessageStatusCallback","status":"READ"}"#).is_err());
}
