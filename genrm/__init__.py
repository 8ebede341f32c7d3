"""genrm"""
