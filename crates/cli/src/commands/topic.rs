use clap::Args;

#[derive(Args)]
pub(crate) struct TopicArgs {
    /// Broker to talk to.
    #[arg(long, env = "SKIFF_BOOTSTRAP", default_value = "localhost:9092")]
    bootstrap: String,
}

pub(crate) async fn run(args: TopicArgs) -> anyhow::Result<()> {
    anyhow::bail!("skiff topic is not built yet (bootstrap {})", args.bootstrap)
}
