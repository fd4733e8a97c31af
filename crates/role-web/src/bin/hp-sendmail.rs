//! The sendmail command of the web engine on its own (`hostplane sendmail` is the
//! same code, [`role_web::mailer::client`]); tests put it in `sendmail_path`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code =
        role_web::mailer::client::main(&args, &mut std::io::stdin().lock(), &mut std::io::stderr());
    std::process::exit(code);
}
