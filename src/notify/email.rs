//! E-mail over SMTP (lettre's blocking transport, rustls, no async runtime).

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport};

use super::{email_body, email_subject, EmailSettings, Event, NotifyError};

fn mailbox(addr: &str, what: &str) -> Result<Mailbox, NotifyError> {
    addr.trim().parse().map_err(|e| {
        NotifyError::Settings(format!("e-mail {what} {addr:?} is not an address: {e}"))
    })
}

/// Builds the message for `event`.
pub(crate) fn message(s: &EmailSettings, event: &Event) -> Result<Message, NotifyError> {
    if s.recipients.is_empty() {
        return Err(NotifyError::Settings(
            "e-mail has no recipients: set notifications.email.recipients".into(),
        ));
    }
    let from = if !s.from.is_empty() {
        s.from.clone()
    } else if s.username.contains('@') {
        s.username.clone()
    } else {
        format!("opc-store@{}", event.host)
    };
    let mut b = Message::builder()
        .from(mailbox(&from, "sender")?)
        .subject(email_subject(event))
        .header(ContentType::TEXT_PLAIN);
    for r in &s.recipients {
        b = b.to(mailbox(r, "recipient")?);
    }
    b.body(email_body(event))
        .map_err(|e| NotifyError::Settings(format!("cannot build the e-mail: {e}")))
}

/// Sends one message: STARTTLS required (implicit TLS on port 465) unless
/// `starttls` is false; AUTH when a user name is set.
pub(crate) fn send(s: &EmailSettings, event: &Event, timeout: Duration) -> Result<(), NotifyError> {
    let msg = message(s, event)?;
    let server = format!("{}:{}", s.smtp_host, s.smtp_port);
    if s.smtp_host.is_empty() {
        return Err(NotifyError::Settings(
            "e-mail has no SMTP server: set notifications.email.smtp_host".into(),
        ));
    }
    let smtp_err = |e: lettre::transport::smtp::Error| NotifyError::Smtp {
        server: server.clone(),
        cause: e.to_string(),
        permanent: e.is_permanent(),
    };
    let builder = if !s.starttls {
        SmtpTransport::builder_dangerous(&s.smtp_host)
    } else if s.smtp_port == 465 {
        SmtpTransport::relay(&s.smtp_host).map_err(smtp_err)?
    } else {
        SmtpTransport::starttls_relay(&s.smtp_host).map_err(smtp_err)?
    };
    let mut builder = builder.port(s.smtp_port).timeout(Some(timeout));
    if !s.username.is_empty() {
        builder = builder.credentials(Credentials::new(s.username.clone(), s.password.clone()));
    }
    builder.build().send(&msg).map_err(smtp_err)?;
    Ok(())
}
