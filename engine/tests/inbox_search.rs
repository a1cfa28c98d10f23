//! End to end on the real binary (issue 14): the inbox's badge numbers follow assignments and
//! resolutions, and search by message text finds the conversations whose messages (the customer's and
//! the agents') have every word, paged without repeats, within the tenant only.

mod support;

use serde_json::{Value, json};
use support::{Node, add_agent, api_get, api_post, customer_writes, provision};

async fn search(node: &Node, token: &str, q: &str, limit: usize) -> Vec<String> {
    let mut found = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..50 {
        let mut path = format!(
            "/api/v1/conversations?limit={limit}&q={}",
            q.replace(' ', "+")
        );
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let (status, page) = api_get(node, token, &path).await;
        assert_eq!(status, 200, "{page}");
        for item in page["items"].as_array().expect("items") {
            found.push(item["id"].as_str().expect("id").to_string());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return found,
        }
    }
    panic!("search never ended");
}

async fn counts(node: &Node, token: &str) -> Value {
    let (status, counts) = api_get(node, token, "/api/v1/conversations/counts?tags=vip").await;
    assert_eq!(status, 200, "{counts}");
    counts
}

#[tokio::test]
async fn badge_counts_follow_tickets_and_text_search_finds_every_word_once() {
    let node = Node::start().await;
    let a = provision(&node, "inbox-a").await;
    let b = provision(&node, "inbox-b").await;
    let (ana, ana_token) = add_agent(&node, &a, "Ana", "agent").await;
    let token = a.agent_token.clone();
    for (n, text) in [
        "Meu pedido 4512 atrasou",
        "O pedido não chegou, atrasou muito",
        "Pedido atrasou de novo!",
        "Boleto vencido",
    ]
    .into_iter()
    .enumerate()
    {
        customer_writes(
            &node,
            &a,
            &format!("55119940000{n:02}"),
            &format!("wamid.I{n}"),
            text,
        )
        .await;
    }
    customer_writes(&node, &b, "5511994000000", "wamid.IB", "pedido atrasou").await;

    // Search: every word, accents and case folded, each conversation once across pages.
    let delayed = search(&node, &token, "pedido atrasou", 2).await;
    assert_eq!(delayed.len(), 3, "{delayed:?}");
    let mut unique = delayed.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 3, "no repeats across pages");
    assert_eq!(search(&node, &token, "NAO chegou", 10).await.len(), 1);
    assert!(search(&node, &token, "pedido boleto", 10).await.is_empty());
    assert_eq!(search(&node, &token, "boleto", 10).await.len(), 1);
    assert_eq!(
        search(&node, &b.agent_token, "pedido", 10).await.len(),
        1,
        "b sees its own only"
    );

    // An agent's reply is searchable too.
    let (status, sent) = api_post(
        &node,
        &token,
        &format!("/api/v1/conversations/{}/messages", delayed[0]),
        json!({"text": "Vamos providenciar o reembolso"}),
    )
    .await;
    assert_eq!(status, 202, "{sent}");
    assert_eq!(
        search(&node, &token, "reembolso", 10).await,
        vec![delayed[0].clone()]
    );

    // Badge numbers: four active tickets, nobody's yet.
    let before = counts(&node, &ana_token).await;
    assert_eq!(before["all"], 4);
    assert_eq!(before["unassigned"], 4);
    assert_eq!(before["mine"], 0);
    assert_eq!(before["status"]["open"], 4);
    assert_eq!(before["priority"]["normal"], 4);
    assert_eq!(before["tags"]["vip"], 0);
    let ticket = |path: &str, body: Value| {
        let (node, token, path) = (&node, token.clone(), path.to_string());
        async move { api_post(node, &token, &path, body).await }
    };
    let first = format!("/api/v1/conversations/{}", delayed[1]);
    let (status, _) = ticket(&format!("{first}/assignments"), json!({"assignee_id": ana})).await;
    assert_eq!(status, 200);
    let (status, _) = ticket(&format!("{first}/labels"), json!({"labels": ["vip"]})).await;
    assert_eq!(status, 200);
    let assigned = counts(&node, &ana_token).await;
    assert_eq!(
        (&assigned["all"], &assigned["mine"], &assigned["unassigned"]),
        (&json!(4), &json!(1), &json!(3))
    );
    assert_eq!(assigned["status"]["in_progress"], 1);
    assert_eq!(assigned["tags"]["vip"], 1);
    let (status, _) = ticket(
        &format!("{first}/toggle_status"),
        json!({"status": "resolved"}),
    )
    .await;
    assert_eq!(status, 200);
    let resolved = counts(&node, &ana_token).await;
    assert_eq!(
        (&resolved["all"], &resolved["mine"]),
        (&json!(3), &json!(0))
    );
    assert_eq!(
        resolved["tags"]["vip"], 0,
        "resolved tickets are not counted"
    );
    assert_eq!(
        counts(&node, &b.agent_token).await["all"],
        1,
        "b counts its own only"
    );

    // Bad input.
    for (path, code) in [
        ("/api/v1/conversations?q=ok", "invalid_search"),
        (
            "/api/v1/conversations?q=pedido&status=open",
            "one_filter_at_most",
        ),
        (
            "/api/v1/conversations?q=pedido&cursor=zzz",
            "invalid_cursor",
        ),
        ("/api/v1/conversations/counts?tags=bad%20tag", "invalid_tag"),
        (
            "/api/v1/conversations/counts?tags=a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q",
            "invalid_tag",
        ),
    ] {
        let (status, body) = api_get(&node, &token, path).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some(code)),
            "{path}: {body}"
        );
    }
}
