//! The `users` table.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{conflict, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// When the email was proven (a mailed code or Google); never-proven accounts cannot sign in.
    pub email_verified_at: Option<DateTime<Utc>>,
}

/// A user as pages and API clients see them.
impl From<User> for app::api::UserView {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            email: user.email,
            name: user.name,
        }
    }
}

impl Store {
    pub async fn insert_user(&self, email: &str, name: &str) -> Result<User, StoreError> {
        on!(self.db, |c| sqlx::query_as(
            "INSERT INTO users (id, email, name, created_at) VALUES ($1, $2, $3, $4)
             RETURNING id, email, name, created_at, email_verified_at",
        )
        .bind(Uuid::new_v4().to_string())
        .bind(email)
        .bind(name)
        .bind(Utc::now())
        .fetch_one(c)
        .await)
        .map_err(conflict("a user with this email"))
    }

    /// Emails compare without regard to case (the column's collation, on either database).
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        Ok(on!(self.db, |c| sqlx::query_as(
            "SELECT id, email, name, created_at, email_verified_at FROM users WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(c)
        .await)?)
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        Ok(on!(self.db, |c| sqlx::query_as(
            "SELECT id, email, name, created_at, email_verified_at FROM users WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(c)
        .await)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::both_databases;

    both_databases! {
        async fn users_are_found_by_email_in_any_case(store: Store) {
            let ada = store.insert_user("ada@example.com", "Ada").await.unwrap();
            assert_eq!(
                store.user_by_email("ADA@example.com").await.unwrap(),
                Some(ada.clone())
            );
            assert_eq!(store.user_by_id(&ada.id).await.unwrap(), Some(ada));
            assert_eq!(store.user_by_email("bob@example.com").await.unwrap(), None);
        }

        async fn an_email_belongs_to_one_user(store: Store) {
            store.insert_user("ada@example.com", "Ada").await.unwrap();
            let again = store.insert_user("Ada@Example.com", "Imposter").await;
            assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
        }
    }
}
