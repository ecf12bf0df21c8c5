use clap::Args;

#[derive(Args)]
pub(crate) struct ProduceArgs {
    /// Broker to talk to.
    #[arg(long, env = "SKIFF_BOOTSTRAP", default_value = "localhost:9092")]
    bootstrap: String,
}

pub(crate) async fn run(args: ProduceArgs) -> anyhow::Result<()> {
    anyhow::bail!("skiff produce is not built yet (bootstrap {})", args.bootstrap)
}
