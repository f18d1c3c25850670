{#- Every row satisfies `expression` (an accepted range or a relation between columns). -#}
{% test expression_is_true(model, expression) %}
select *
from {{ model }}
where not ({{ expression }})
{% endtest %}
