//! The Evolution parser on payloads in the shapes Evolution API v2 sends (its docs publish no webhook
//! examples; these follow its source, tag 2.3.6), including the odd ones: the pre-2.2 text shape,
//! groups, `@lid` contacts, our own sends echoed, status stories, the QR limit.

use super::*;
use serde_json::json;

fn envelope(event: &str, data: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "event": event, "instance": "acme-main", "data": data,
        "destination": "https://backend.example.com/webhooks/evolution/x/SECRET",
        "date_time": "2024-06-06T12:51:37.412Z", "sender": "5511900001111@s.whatsapp.net",
        "server_url": "https://evo.example.com", "apikey": null
    }))
    .expect("json")
}

fn upsert(key: Value, message: Value, message_type: &str) -> Vec<u8> {
    envelope(
        "messages.upsert",
        json!({"key": key, "pushName": "Maria Silva", "status": "DELIVERY_ACK", "message": message,
               "messageType": message_type, "messageTimestamp": 1717689097,
               "instanceId": "af6c5b7c-ee27-4f94-9ea8-192393746ddd", "source": "android"}),
    )
}

fn person(id: &str) -> Value {
    json!({"remoteJid": "5511988887777@s.whatsapp.net", "fromMe": false, "id": id})
}

fn only_message(body: &[u8]) -> InboundMessage {
    let parsed = parse(body).expect("parses");
    assert_eq!(parsed.instance.as_deref(), Some("acme-main"));
    match parsed.events.as_slice() {
        [InboundEvent::Message(m)] => m.clone(),
        other => panic!("expected one message, got {other:?}"),
    }
}

#[test]
fn text_message_becomes_an_inbound_message_from_the_contacts_number() {
    let m = only_message(&upsert(
        person("3EB0C431C26A1916E07A"),
        json!({"conversation": "Olá, tudo bem?", "messageContextInfo": {"messageSecret": {"0": 12}}}),
        "conversation",
    ));
    assert_eq!(m.provider_message_id, "3EB0C431C26A1916E07A");
    assert_eq!(m.from.address, "5511988887777");
    assert_eq!(m.from.name.as_deref(), Some("Maria Silva"));
    assert_eq!(
        m.content,
        MessageContent::Text {
            body: "Olá, tudo bem?".into()
        }
    );
    assert_eq!(m.sent_at, Timestamp::from_second(1717689097).expect("ts"));
}

#[test]
fn quoted_reply_in_both_the_current_and_the_pre_2_2_shapes() {
    let mut current = serde_json::from_slice::<Value>(&upsert(
        person("3EB0A1"),
        json!({"conversation": "Sim, pode ser amanhã"}),
        "conversation",
    ))
    .expect("json");
    current["data"]["contextInfo"] = json!({"stanzaId": "BAE594145F4C59B4", "quotedMessage": {}});
    let m = only_message(&serde_json::to_vec(&current).expect("json"));
    assert_eq!(m.reply_to.as_deref(), Some("BAE594145F4C59B4"));

    let legacy = only_message(&upsert(
        person("3EB0FF"),
        json!({"extendedTextMessage": {"text": "veja https://example.com",
               "contextInfo": {"stanzaId": "BAE5OLD"}}}),
        "extendedTextMessage",
    ));
    assert_eq!(
        legacy.content,
        MessageContent::Text {
            body: "veja https://example.com".into()
        }
    );
    assert_eq!(legacy.reply_to.as_deref(), Some("BAE5OLD"));
}

#[test]
fn media_is_kept_as_a_reference_to_the_message_with_its_metadata() {
    let image = only_message(&upsert(
        person("3EB0IMG"),
        json!({"imageMessage": {"url": "https://mmg.whatsapp.net/o1/abc.enc", "mimetype": "image/jpeg",
               "caption": "Comprovante", "fileSha256": {"0": 1}, "fileLength": "1305757"}}),
        "imageMessage",
    ));
    match image.content {
        MessageContent::Media {
            kind,
            media_id,
            mime_type,
            caption,
            ..
        } => {
            assert_eq!(kind, MediaKind::Image);
            assert_eq!(
                media_id, "3EB0IMG",
                "fetched by message id, never by the encrypted CDN url"
            );
            assert_eq!(mime_type.as_deref(), Some("image/jpeg"));
            assert_eq!(caption.as_deref(), Some("Comprovante"));
        }
        other => panic!("{other:?}"),
    }
    let voice = only_message(&upsert(
        person("3EB0AUD"),
        json!({"audioMessage": {"mimetype": "audio/ogg; codecs=opus", "seconds": 7, "ptt": true}}),
        "audioMessage",
    ));
    assert!(matches!(
        voice.content,
        MessageContent::Media {
            kind: MediaKind::Audio,
            voice: true,
            ..
        }
    ));
    let document = only_message(&upsert(
        person("3EB0DOC"),
        json!({"documentMessage": {"mimetype": "application/pdf", "fileName": "boleto.pdf", "caption": "segue"}}),
        "documentMessage",
    ));
    assert!(matches!(document.content,
        MessageContent::Media { kind: MediaKind::Document, filename: Some(ref f), .. } if f == "boleto.pdf"));
}

#[test]
fn location_contact_and_reaction_are_understood() {
    let location = only_message(&upsert(
        person("L1"),
        json!({"locationMessage": {"degreesLatitude": -23.5489, "degreesLongitude": -46.6388,
               "name": "Escritório", "address": "Av. Paulista, 1000"}}),
        "locationMessage",
    ));
    assert!(
        matches!(location.content, MessageContent::Location { latitude, .. } if latitude == -23.5489)
    );
    let contact = only_message(&upsert(
        person("C1"),
        json!({"contactMessage": {"displayName": "João",
               "vcard": "BEGIN:VCARD\nVERSION:3.0\nFN:João\nTEL;type=CELL;waid=5511977776666:+55 11 97777-6666\nEND:VCARD"}}),
        "contactMessage",
    ));
    match contact.content {
        MessageContent::Contacts { contacts } => {
            assert_eq!(contacts[0].name, "João");
            assert_eq!(contacts[0].phones, vec!["5511977776666".to_string()]);
        }
        other => panic!("{other:?}"),
    }
    let reaction = only_message(&upsert(
        person("R1"),
        json!({"reactionMessage": {"key": {"remoteJid": "5511988887777@s.whatsapp.net", "fromMe": true,
               "id": "BAE58DA6CBC941BC"}, "text": "👍"}}),
        "reactionMessage",
    ));
    assert_eq!(
        reaction.content,
        MessageContent::Reaction {
            target: "BAE58DA6CBC941BC".into(),
            emoji: "👍".into()
        }
    );
}

#[test]
fn unknown_message_types_are_kept_as_unsupported_with_the_raw_message() {
    let poll = only_message(&upsert(
        person("P1"),
        json!({"pollCreationMessageV3": {"name": "Qual horário?", "options": []}}),
        "pollCreationMessageV3",
    ));
    match poll.content {
        MessageContent::Unsupported { provider_type, raw } => {
            assert_eq!(provider_type, "pollCreationMessageV3");
            assert_eq!(raw["pollCreationMessageV3"]["name"], "Qual horário?");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn sends_from_the_phone_and_through_the_api_are_echoes() {
    let phone = upsert(
        json!({"remoteJid": "5511988887777@s.whatsapp.net", "fromMe": true, "id": "3EB0ME"}),
        json!({"conversation": "Te ligo já"}),
        "conversation",
    );
    let parsed = parse(&phone).expect("parses");
    assert!(matches!(parsed.events.as_slice(), [InboundEvent::Echo(m)] if m.from.name.is_none()));
    let mut api_send: Value = serde_json::from_slice(&phone).expect("json");
    api_send["event"] = json!("send.message");
    let parsed = parse(&serde_json::to_vec(&api_send).expect("json")).expect("parses");
    assert!(matches!(parsed.events.as_slice(), [InboundEvent::Echo(_)]));
}

#[test]
fn groups_keep_their_jid_and_lid_contacts_use_their_phone() {
    let group = only_message(&upsert(
        json!({"remoteJid": "120363025246125888@g.us", "fromMe": false, "id": "G1",
               "participant": "5511977776666@s.whatsapp.net"}),
        json!({"conversation": "Bom dia, grupo"}),
        "conversation",
    ));
    assert_eq!(group.from.address, "120363025246125888@g.us");
    assert_eq!(group.from.name, None, "a member's name is not the group's");
    assert_eq!(
        group.sender.as_ref().map(|s| s.address.as_str()),
        Some("5511977776666")
    );
    let lid = only_message(&upsert(
        json!({"remoteJid": "123456789012345@lid", "remoteJidAlt": "5511988887777@s.whatsapp.net",
               "addressingMode": "lid", "fromMe": false, "id": "LID1"}),
        json!({"conversation": "oi"}),
        "conversation",
    ));
    assert_eq!(lid.from.address, "5511988887777");
}

#[test]
fn status_stories_are_ignored_not_stored() {
    let parsed = parse(&upsert(
        json!({"remoteJid": "status@broadcast", "fromMe": false, "id": "S1"}),
        json!({"conversation": "story"}),
        "conversation",
    ))
    .expect("parses");
    assert!(parsed.events.is_empty());
    assert_eq!(parsed.ignored, 1);
}

#[test]
fn delivery_statuses_map_in_order_and_errors_fail_the_message() {
    let cases = [
        ("SERVER_ACK", MessageStatus::Sent),
        ("DELIVERY_ACK", MessageStatus::Delivered),
        ("READ", MessageStatus::Read),
        ("PLAYED", MessageStatus::Read),
        ("ERROR", MessageStatus::Failed),
    ];
    for (raw, expected) in cases {
        let body = envelope(
            "messages.update",
            json!({"keyId": "BAE594145F4C59B4", "remoteJid": "5511988887777@s.whatsapp.net",
                   "fromMe": true, "status": raw, "instanceId": "af6c", "messageId": "clx1a2b3c"}),
        );
        let parsed = parse(&body).expect("parses");
        match parsed.events.as_slice() {
            [InboundEvent::Status(s)] => {
                assert_eq!(
                    s.provider_message_id, "BAE594145F4C59B4",
                    "the WhatsApp id, not the DB id"
                );
                assert_eq!(s.recipient, "5511988887777");
                assert_eq!(s.status, expected);
                assert_eq!(s.error.is_some(), expected == MessageStatus::Failed);
            }
            other => panic!("{raw}: {other:?}"),
        }
    }
}

#[test]
fn connection_updates_and_qr_codes_change_the_session() {
    let state = |state: &str| {
        parse(&envelope(
            "CONNECTION_UPDATE",
            json!({"instance": "acme-main", "state": state, "statusReason": 200}),
        ))
        .expect("parses")
        .session
    };
    assert_eq!(
        state("open"),
        Some(SessionChange::Status(ConnectionStatus::Connected))
    );
    assert_eq!(
        state("connecting"),
        Some(SessionChange::Status(ConnectionStatus::Connecting))
    );
    assert_eq!(
        state("close"),
        Some(SessionChange::Status(ConnectionStatus::Disconnected))
    );
    assert_eq!(
        state("refused"),
        Some(SessionChange::Status(ConnectionStatus::Error))
    );
    let qr = parse(&envelope(
        "qrcode.updated",
        json!({"qrcode": {"instance": "acme-main", "pairingCode": null, "code": "2@y8eK",
               "base64": "data:image/png;base64,iVBORw0KGgo"}}),
    ))
    .expect("parses");
    assert_eq!(
        qr.session,
        Some(SessionChange::Qr(
            "data:image/png;base64,iVBORw0KGgo".into()
        ))
    );
    let limit = parse(&envelope(
        "qrcode.updated",
        json!({"message": "QR code limit reached, please login again", "statusCode": 500}),
    ))
    .expect("parses");
    assert_eq!(
        limit.session,
        Some(SessionChange::Status(ConnectionStatus::Error))
    );
}

#[test]
fn malformed_bodies_are_refused_not_half_read() {
    assert!(parse(b"not json").is_err());
    assert!(parse(br#"{"instance":"x"}"#).is_err());
    assert!(parse(&envelope("messages.upsert", json!({"message": {}}))).is_err());
    let other = parse(&envelope("presence.update", json!({}))).expect("parses");
    assert_eq!((other.events.len(), other.ignored), (0, 1));
}
