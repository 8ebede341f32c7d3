"""downstream_eval"""
