//! Log a user in with Vipps MobilePay Login (OpenID Connect) and read their profile.
//!
//! `cargo run --example login`
//!
//! With none of `VIPPS_CLIENT_ID`, `VIPPS_CLIENT_SECRET`, `VIPPS_SUBSCRIPTION_KEY` and
//! `VIPPS_MERCHANT_SERIAL_NUMBER` set (an empty value counts as unset) it runs offline against
//! the in-process sandbox, and plays the user itself: it opens the sandbox's landing page and
//! posts its "Approve" form, as a browser would. With all four set, it runs against the Vipps
//! MobilePay test environment: it prints the authorization URL, and you paste the address the
//! browser was sent back to (`VIPPS_LOGIN_REDIRECT_URI`, registered in the portal). With only
//! some of them set, it stops before doing anything and names the missing ones.
//!
//! Either way it validates the ID token it receives (signature against the issuer's JWKS,
//! issuer, audience, expiry, nonce) and prints the claims Userinfo gives for the consented
//! scopes.

use std::error::Error;

use vipps::login::Provider;
use vipps_sandbox::Sandbox;

mod shared;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const SCOPES: [&str; 4] = ["openid", "name", "email", "phoneNumber"];

/// Plays the user at the sandbox: opens the landing page and approves. Returns the query of
/// the redirect back to the service.
async fn approve_at_the_sandbox(sandbox: &Sandbox, url: &str) -> Result<String> {
    let browser = vipps::reqwest::Client::builder().redirect(vipps::reqwest::redirect::Policy::none()).build()?;
    let page = browser.get(url).send().await?.error_for_status()?.text().await?;
    let marker = "name=\"request_id\" value=\"";
    let start = page.find(marker).ok_or("the landing page has no login form")? + marker.len();
    let end = page[start..].find('"').ok_or("the landing page's form is cut short")? + start;
    let form = [("request_id", &page[start..end]), ("decision", "approve")];
    let action = format!("{}/access-management-1.0/access/oauth2/auth", sandbox.base_url());
    let answer = browser.post(action).form(&form).send().await?;
    let location = answer.headers().get("location").ok_or("the sandbox did not redirect back")?.to_str()?;
    Ok(location.split_once('?').map(|(_, q)| q.to_owned()).unwrap_or_default())
}

#[tokio::main]
async fn main() -> Result<()> {
    let test_only = "the Login example logs a test user in: it runs against the test environment only";
    let (vipps, sandbox, place) = shared::connect("vipps-rs-login-example", test_only).await?;
    println!("Running against {place}.\n");
    let redirect_uri = match &sandbox {
        Some(_) => "http://127.0.0.1:8000/login/callback".to_owned(),
        None => std::env::var("VIPPS_LOGIN_REDIRECT_URI").map_err(|_| "set VIPPS_LOGIN_REDIRECT_URI to a redirect URI registered in the portal")?,
    };

    let provider = Provider::discover(&vipps).await?;
    println!("1. discovered the issuer {}", provider.issuer());
    let request = provider.authorize(&redirect_uri, &SCOPES)?;
    println!("2. authorization URL (state, nonce and PKCE challenge are fresh and random):\n   {}", request.url);
    let callback = match &sandbox {
        Some(sandbox) => {
            let query = approve_at_the_sandbox(sandbox, &request.url).await?;
            println!("3. the user approved on the sandbox's landing page; back at {redirect_uri}");
            query
        }
        None => {
            println!("3. open the URL, log in, and paste the address the browser was sent back to:");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim().split_once('?').map(|(_, q)| q.to_owned()).unwrap_or_default()
        }
    };
    let tokens = provider.exchange(&request.pending, &callback).await?;
    let c = &tokens.claims;
    println!("4. the ID token is valid: sub {}, issued at {}, expires at {}, nonce matches", c.sub, c.iat, c.exp);
    let info = vipps.userinfo_for(tokens.access_token())?.userinfo_authorization_code().send().await?.into_inner();
    println!("5. userinfo for the consented scopes ({}):", tokens.scope.as_deref().unwrap_or("?"));
    println!("   name:  {}", info.name.as_deref().unwrap_or("-"));
    println!("   email: {}", info.email.as_deref().unwrap_or("-"));
    println!("   phone: {}", info.phone_number.as_ref().map(|p| p.to_string()).unwrap_or_else(|| "-".into()));
    println!("   address shared: {}", if info.address.is_some() { "yes" } else { "no (not asked for)" });
    Ok(())
}
