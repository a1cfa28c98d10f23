//! Nothing acknowledged is lost: a node killed with SIGKILL right after answering 200 to a burst of
//! webhooks has every acknowledged message after a restart, exactly once, and its conversations go on
//! with the next seq.

mod support;

use std::collections::HashMap;
use support::{Node, all_conversations, all_messages, provision, whatsapp};

#[tokio::test]
async fn acknowledged_messages_survive_sigkill_exactly_once() {
    let mut node = Node::start().await;
    let tenant = provision(&node, "durable").await;
    // 200 webhooks over 20 contacts, 8 in flight at a time.
    let payloads: Vec<_> = (0..200)
        .map(|i| {
            let contact = format!("55119000{:05}", i % 20);
            let wamid = format!("wamid.D{i}");
            (
                wamid.clone(),
                whatsapp::webhook(
                    &tenant.phone_number_id,
                    vec![whatsapp::text(&contact, &wamid, &format!("m{i}"))],
                    vec![],
                ),
            )
        })
        .collect();
    let mut acknowledged = Vec::new();
    for chunk in payloads.chunks(8) {
        let answers =
            futures::future::join_all(chunk.iter().map(|(_, p)| whatsapp::post(&node, &tenant, p)))
                .await;
        for ((wamid, _), (status, _)) in chunk.iter().zip(answers) {
            if status == 200 {
                acknowledged.push(wamid.clone());
            }
        }
    }
    assert_eq!(
        acknowledged.len(),
        200,
        "every webhook was acknowledged before the kill"
    );
    node.kill9().await;

    let node = node.restart().await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for conversation in all_conversations(&node, &tenant.agent_token).await {
        let id = conversation["id"].as_str().unwrap();
        let messages = all_messages(&node, &tenant.agent_token, id).await;
        assert_eq!(
            messages.len() as u64,
            conversation["message_count"].as_u64().unwrap()
        );
        for message in messages {
            *seen
                .entry(message["provider_message_id"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    for wamid in &acknowledged {
        assert_eq!(
            seen.get(wamid),
            Some(&1),
            "{wamid} must be stored exactly once"
        );
    }
    assert_eq!(seen.len(), acknowledged.len());

    // After the crash Meta retries some deliveries: still exactly once, and new messages continue the seq.
    let (status, body) = whatsapp::post(&node, &tenant, &payloads[0].1).await;
    assert_eq!((status, body["duplicates"].as_u64()), (200, Some(1)));
    let fresh = whatsapp::webhook(
        &tenant.phone_number_id,
        vec![whatsapp::text("5511900000000", "wamid.after", "depois")],
        vec![],
    );
    assert_eq!(whatsapp::post(&node, &tenant, &fresh).await.0, 200);
    let conversations = all_conversations(&node, &tenant.agent_token).await;
    let first = conversations
        .iter()
        .find(|c| c["contact"]["address"] == "5511900000000")
        .unwrap();
    let messages = all_messages(&node, &tenant.agent_token, first["id"].as_str().unwrap()).await;
    assert_eq!(messages.len(), 11);
    let seqs: Vec<u64> = messages
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "history is ordered by seq: {seqs:?}"
    );
    assert_eq!(messages.last().unwrap()["content"]["body"], "depois");
}
