//! user-service over real RPC and a real PostgreSQL database of its own.

use contracts::user::{BulkUsers, Credentials, UserError, UserServiceClient};
use contracts::{Actor, Role};
use platform::auth::{JwtKeys, JwtSettings};
use platform::node::NodeSettings;
use rpc::Error;
use secrecy::SecretString;
use testkit::TestDb;
use user_service::settings::AdminBootstrap;
use user_service::{Application, Settings};

struct TestApp {
    app: Application,
    client: UserServiceClient,
    jwt: JwtSettings,
    _db: TestDb,
}

async fn spawn_app() -> TestApp {
    let db = TestDb::create().await;
    let jwt = JwtSettings { secret: SecretString::from("test-secret"), ..Default::default() };
    let settings = Settings {
        node: NodeSettings::listening("127.0.0.1:0", None),
        registry: testkit::static_registry(),
        database: db.settings(),
        jwt: jwt.clone(),
        admin: AdminBootstrap { username: "root".into(), password: Some(SecretString::from("root-password")) },
    };
    let app = Application::build(settings).await.expect("user-service starts");
    let client = UserServiceClient::new(rpc::Channel::new(app.address().to_string(), Default::default()));
    TestApp { app, client, jwt, _db: db }
}

fn creds(username: &str, password: &str) -> Credentials {
    Credentials { username: username.into(), password: password.into() }
}

#[tokio::test]
async fn register_then_login_issues_a_verifiable_token() {
    let t = spawn_app().await;
    let user = t.client.register(creds("alice", "correct horse")).await.unwrap();
    assert_eq!((user.username.as_str(), user.role), ("alice", Role::User));
    let session = t.client.login(creds("alice", "correct horse")).await.unwrap();
    assert_eq!(session.user, user);
    let actor = JwtKeys::new(&t.jwt).verify(&session.token).unwrap();
    assert_eq!(actor, Actor { user_id: user.id, role: Role::User });
    assert_eq!(t.client.get_user(user.id).await.unwrap(), user);
    t.app.stop().await;
}

#[tokio::test]
async fn bad_logins_and_bad_input_get_typed_errors() {
    let t = spawn_app().await;
    t.client.register(creds("bob", "correct horse")).await.unwrap();
    assert_eq!(
        t.client.register(creds("bob", "another pass")).await,
        Err(Error::Application(UserError::UsernameTaken))
    );
    assert_eq!(
        t.client.login(creds("bob", "wrong horse")).await,
        Err(Error::Application(UserError::InvalidCredentials))
    );
    assert_eq!(
        t.client.login(creds("nobody", "whatever1")).await,
        Err(Error::Application(UserError::InvalidCredentials))
    );
    assert!(matches!(
        t.client.register(creds("b", "correct horse")).await,
        Err(Error::Application(UserError::Invalid(_)))
    ));
    assert!(matches!(t.client.register(creds("carol", "short")).await, Err(Error::Application(UserError::Invalid(_)))));
    assert_eq!(t.client.get_user(999_999).await, Err(Error::Application(UserError::NotFound)));
    t.app.stop().await;
}

#[tokio::test]
async fn the_configured_admin_exists_and_logs_in_as_admin() {
    let t = spawn_app().await;
    let session = t.client.login(creds("root", "root-password")).await.unwrap();
    assert_eq!(session.user.role, Role::Admin);
    assert_eq!(JwtKeys::new(&t.jwt).verify(&session.token).unwrap().role, Role::Admin);
    t.app.stop().await;
}

#[tokio::test]
async fn bulk_users_are_admin_only_token_only_and_reused() {
    let t = spawn_app().await;
    let admin = t.client.login(creds("root", "root-password")).await.unwrap().user;
    let admin = Actor { user_id: admin.id, role: Role::Admin };
    let buyer = Actor { user_id: admin.user_id, role: Role::User };
    let request = BulkUsers { prefix: "load_".into(), count: 5_000 };
    assert_eq!(t.client.bulk_create(buyer, request.clone()).await, Err(Error::Application(UserError::Forbidden)));

    let issued = t.client.bulk_create(admin, request.clone()).await.unwrap();
    assert_eq!(issued.len(), 5_000);
    let keys = JwtKeys::new(&t.jwt);
    for user in issued.iter().step_by(499) {
        assert_eq!(keys.verify(&user.token).unwrap(), Actor { user_id: user.id, role: Role::User });
    }
    // Token-only users have no password: no login for them, whatever is tried.
    assert_eq!(t.client.login(creds("load_0", "")).await, Err(Error::Application(UserError::InvalidCredentials)));
    // Asking again reuses the same accounts.
    let again = t.client.bulk_create(admin, request).await.unwrap();
    assert_eq!(again.iter().map(|u| u.id).collect::<Vec<_>>(), issued.iter().map(|u| u.id).collect::<Vec<_>>());
    // A name held by a real account is never handed out.
    t.client.register(creds("real_7", "correct horse")).await.unwrap();
    let clash = t.client.bulk_create(admin, BulkUsers { prefix: "real_".into(), count: 10 }).await;
    assert!(matches!(clash, Err(Error::Application(UserError::Invalid(_)))), "{clash:?}");
    t.app.stop().await;
}
