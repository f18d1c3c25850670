{{ config(enabled=is_coarser_than_base("1h"), indexes=bar_key_indexes()) }}
{{ resample("1h") }}
