"""policy_rlhf"""
