"""The MLflow tags one stage writes and another reads: one name each, so a writer and its
readers cannot drift apart."""

CHECKPOINT = "checkpoint_path"  # a training run's trained model: what runs:/<run id> resolves to
CHECKPOINT_PENDING = "checkpoint_path_pending"  # where a submitted job will leave it
GENRM_RUN = "genrm_run_id"  # the genrm_train run whose GenRM a run used (genrm_eval, policy_train)
POLICY_RUN = "policy_run_id"  # the policy_train run whose policy a downstream_eval run evaluated
LINKS = (GENRM_RUN, POLICY_RUN)  # a run's link to the run whose model it used
FAMILY = "family_"  # family_<key>=<value> (family_size=8b, family_reward=ralign): what a variant is, per key
CHECKPOINTS = "checkpoints_file"  # a training run's checkpoints.json: each kept model and its step
