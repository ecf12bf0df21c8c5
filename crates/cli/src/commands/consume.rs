use clap::Args;

#[derive(Args)]
pub(crate) struct ConsumeArgs {
    /// Broker to talk to.
    #[arg(long, env = "SKIFF_BOOTSTRAP", default_value = "localhost:9092")]
    bootstrap: String,
}

pub(crate) async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    anyhow::bail!("skiff consume is not built yet (bootstrap {})", args.bootstrap)
}
