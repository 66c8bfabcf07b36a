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
        password: Default::default(),
    };
    let app = Application::build(settings).await.expect("user-service starts");
    let client = UserServiceClient::new(testkit::channel(app.address()));
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
    let as_self = t.client.clone().with_credential(testkit::as_user(user.id));
    assert_eq!(as_self.get_user(user.id).await.unwrap(), user);
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
    let as_admin = t.client.clone().with_credential(testkit::as_admin());
    assert_eq!(as_admin.get_user(999_999).await, Err(Error::Application(UserError::NotFound)));
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
    let admin_id = t.client.login(creds("root", "root-password")).await.unwrap().user.id;
    let identities = testkit::identities();
    let admin =
        t.client.clone().with_credential(identities.user_credential(Actor { user_id: admin_id, role: Role::Admin }));
    let buyer =
        t.client.clone().with_credential(identities.user_credential(Actor { user_id: admin_id, role: Role::User }));
    let request = BulkUsers { prefix: "load_".into(), count: 5_000 };
    assert_eq!(buyer.bulk_create(request.clone()).await, Err(Error::Application(UserError::Forbidden)));
    assert_eq!(t.client.bulk_create(request.clone()).await, Err(Error::Application(UserError::Unauthenticated)));

    let issued = admin.bulk_create(request.clone()).await.unwrap();
    assert_eq!(issued.len(), 5_000);
    let keys = JwtKeys::new(&t.jwt);
    for user in issued.iter().step_by(499) {
        assert_eq!(keys.verify(&user.token).unwrap(), Actor { user_id: user.id, role: Role::User });
    }
    // Token-only users have no password: no login for them, whatever is tried.
    assert_eq!(t.client.login(creds("load_0", "")).await, Err(Error::Application(UserError::InvalidCredentials)));
    // Asking again reuses the same accounts.
    let again = admin.bulk_create(request).await.unwrap();
    assert_eq!(again.iter().map(|u| u.id).collect::<Vec<_>>(), issued.iter().map(|u| u.id).collect::<Vec<_>>());
    // A name held by a real account is never handed out.
    t.client.register(creds("real_7", "correct horse")).await.unwrap();
    let clash = admin.bulk_create(BulkUsers { prefix: "real_".into(), count: 10 }).await;
    assert!(matches!(clash, Err(Error::Application(UserError::Invalid(_)))), "{clash:?}");
    t.app.stop().await;
}

#[tokio::test]
async fn outside_development_each_built_in_secret_is_refused_by_name() {
    let mut settings = Settings { node: NodeSettings::listening("127.0.0.1:0", None), ..Settings::default() };
    settings.node.env = platform::env::Environment::Production;
    settings.admin.password = Some(SecretString::from(user_service::settings::DEVELOPMENT_ADMIN_PASSWORD));
    let refusal = Application::build(settings.clone()).await.expect_err("refused").to_string();
    for setting in ["SECKILL_JWT__SECRET", "SECKILL_RPC__KEY", "SECKILL_ADMIN__PASSWORD"] {
        assert!(refusal.contains(setting), "{refusal}");
    }
    // Each one alone is enough to refuse.
    settings.jwt.secret = SecretString::from("j".repeat(40));
    settings.node.rpc.security.key = SecretString::from("k".repeat(40));
    let refusal = Application::build(settings.clone()).await.expect_err("refused").to_string();
    assert!(refusal.contains("SECKILL_ADMIN__PASSWORD") && !refusal.contains("SECKILL_JWT__SECRET"), "{refusal}");
    settings.admin.password = Some(SecretString::from("an admin password of its own"));
    assert!(settings.check_secrets().is_ok());
    settings.jwt.secret = SecretString::from("too short");
    assert!(settings.check_secrets().unwrap_err().to_string().contains("SECKILL_JWT__SECRET is shorter"));
}

#[tokio::test]
async fn a_new_admin_password_in_the_settings_replaces_the_old_one_at_the_next_start() {
    let t = spawn_app().await;
    t.app.stop().await;
    let settings = Settings {
        node: NodeSettings::listening("127.0.0.1:0", None),
        registry: testkit::static_registry(),
        database: t._db.settings(),
        jwt: t.jwt.clone(),
        admin: AdminBootstrap { username: "root".into(), password: Some(SecretString::from("rotated-password")) },
        password: Default::default(),
    };
    let app = Application::build(settings).await.expect("user-service restarts");
    let client = UserServiceClient::new(testkit::channel(app.address()));
    assert_eq!(
        client.login(creds("root", "root-password")).await,
        Err(Error::Application(UserError::InvalidCredentials))
    );
    assert_eq!(client.login(creds("root", "rotated-password")).await.unwrap().user.role, Role::Admin);
    app.stop().await;
}
