//! Versioned CQL migrations (`schema/cql/NNNN_*.cql`, compiled in): each one applied once, in order,
//! recorded in `schema_migrations`, waiting for schema agreement after every statement so the next one
//! (and the statements the store prepares) sees the change on every node. Every statement is
//! `IF NOT EXISTS`, so a migration interrupted half way is simply run again.

use super::driver_error;
use schema::store::{StoreError, StoreResult};
use scylla::client::session::Session;
use scylla::value::CqlTimestamp;

/// `(version, description, CQL)`, in order.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "initial tables",
        include_str!("../../../../schema/cql/0001_initial.cql"),
    ),
    (
        2,
        "cluster membership, shard leases, conversation fences",
        include_str!("../../../../schema/cql/0002_cluster.cql"),
    ),
    (
        3,
        "tenant feed, ticket numbers",
        include_str!("../../../../schema/cql/0003_helpdesk.cql"),
    ),
    (
        4,
        "departments",
        include_str!("../../../../schema/cql/0004_departments.cql"),
    ),
    (
        5,
        "due index",
        include_str!("../../../../schema/cql/0005_due.cql"),
    ),
    (
        6,
        "quick replies",
        include_str!("../../../../schema/cql/0006_quick_replies.cql"),
    ),
    (
        7,
        "presence",
        include_str!("../../../../schema/cql/0007_presence.cql"),
    ),
    (
        8,
        "contacts",
        include_str!("../../../../schema/cql/0008_contacts.cql"),
    ),
    (
        9,
        "message search and inbox counts",
        include_str!("../../../../schema/cql/0009_search.cql"),
    ),
    (
        10,
        "sign-in",
        include_str!("../../../../schema/cql/0010_sign_in.cql"),
    ),
    (
        11,
        "role permissions",
        include_str!("../../../../schema/cql/0011_role_permissions.cql"),
    ),
    (
        12,
        "audit log",
        include_str!("../../../../schema/cql/0012_audit.cql"),
    ),
    (
        13,
        "tenancy",
        include_str!("../../../../schema/cql/0013_tenancy.cql"),
    ),
];

/// Creates the keyspace when `create_replication` is given, then applies what is missing.
pub async fn run(
    session: &Session,
    keyspace: &str,
    create_replication: Option<&str>,
) -> StoreResult<()> {
    check_identifier(keyspace)?;
    if let Some(replication) = create_replication {
        if replication.contains(';') {
            return Err(StoreError::Unavailable(
                "create_keyspace_replication must be a replication map".into(),
            ));
        }
        let create =
            format!("CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {replication}");
        session
            .query_unpaged(create, ())
            .await
            .map_err(driver_error)?;
        agree(session).await?;
    }
    let applied = applied_versions(session, keyspace).await?;
    for (version, description, cql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        for statement in statements(cql) {
            session
                .query_unpaged(qualify(&statement, keyspace)?, ())
                .await
                .map_err(|e| StoreError::Unavailable(format!("migration {version}: {e}")))?;
            agree(session).await?;
        }
        let now = CqlTimestamp(jiff::Timestamp::now().as_millisecond());
        session
            .query_unpaged(
                format!(
                    "INSERT INTO {keyspace}.schema_migrations (version, applied_at, description) \
                     VALUES (?, ?, ?)"
                ),
                (*version, now, *description),
            )
            .await
            .map_err(driver_error)?;
        tracing::info!(version, description, "applied CQL migration");
    }
    Ok(())
}

async fn applied_versions(session: &Session, keyspace: &str) -> StoreResult<Vec<i32>> {
    // The ledger is the first table of migration 1; create it up front so it can be read.
    if let Some(first) = statements(MIGRATIONS[0].2).into_iter().next() {
        session
            .query_unpaged(qualify(&first, keyspace)?, ())
            .await
            .map_err(driver_error)?;
        agree(session).await?;
    }
    let rows = session
        .query_unpaged(
            format!("SELECT version FROM {keyspace}.schema_migrations"),
            (),
        )
        .await
        .map_err(driver_error)?
        .into_rows_result()
        .map_err(driver_error)?;
    let versions = rows
        .rows::<(i32,)>()
        .map_err(driver_error)?
        .map(|row| row.map(|(v,)| v).map_err(driver_error))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(versions)
}

async fn agree(session: &Session) -> StoreResult<()> {
    session
        .await_schema_agreement()
        .await
        .map(drop)
        .map_err(|e| StoreError::Unavailable(format!("schema agreement: {e}")))
}

/// The statements of a migration file: `--` comments dropped, split on `;`.
fn statements(cql: &str) -> Vec<String> {
    let without_comments: String = cql
        .lines()
        .map(|line| line.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Puts the keyspace in front of the table a DDL statement names: the session never `USE`s a keyspace
/// (that makes prepared statements ambiguous, and Cassandra warns about it).
fn qualify(statement: &str, keyspace: &str) -> StoreResult<String> {
    for prefix in ["CREATE TABLE IF NOT EXISTS ", "ALTER TABLE "] {
        if let Some(rest) = statement.strip_prefix(prefix) {
            return Ok(format!("{prefix}{keyspace}.{rest}"));
        }
    }
    Err(StoreError::Unavailable(format!(
        "migration statement of an unsupported form: {statement:.60}"
    )))
}

/// Keyspace names go into DDL text, so only plain identifiers are accepted.
fn check_identifier(name: &str) -> StoreResult<()> {
    let valid = !name.is_empty()
        && name.len() <= 48
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if valid {
        Ok(())
    } else {
        Err(StoreError::Unavailable(format!(
            "keyspace name {name:?} must be a plain identifier (letters, digits, _)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_file_splits_into_create_statements_without_comments() {
        let statements = statements(MIGRATIONS[0].2);
        assert!(statements.len() >= 10);
        assert!(statements[0].starts_with("CREATE TABLE IF NOT EXISTS schema_migrations"));
        assert!(
            statements
                .iter()
                .all(|s| s.starts_with("CREATE TABLE IF NOT EXISTS"))
        );
        assert!(statements.iter().all(|s| !s.contains("--")));
        let qualified = qualify(&statements[1], "ks").expect("create table");
        assert!(qualified.starts_with("CREATE TABLE IF NOT EXISTS ks.tenants"));
    }

    #[test]
    fn keyspace_names_that_could_inject_cql_are_refused() {
        assert!(check_identifier("conversa_prod").is_ok());
        assert!(check_identifier("x; DROP KEYSPACE y").is_err());
        assert!(check_identifier("1abc").is_err());
    }
}
