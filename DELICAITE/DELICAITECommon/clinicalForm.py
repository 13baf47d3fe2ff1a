"""The clinical covariates form of DELICAITE Recommend, built from DELICAITELib's covariate schema.

One row per field: its input (a line for numbers, a box for yes/no, a list for choices), its unit, and a
red line under it that says why a value is refused, as soon as it is typed. What is typed is kept as text
(``savedValues``) so the module's parameter node keeps it with the scene, and ``restore`` shows it again.
Needs DELICAITELib's packages: the module builds the form once they import. Qt is imported where it is
used, as in support.py.
"""


class ClinicalForm:
    def __init__(self, formLayout, onChanged=None):
        """Add the rows to ``formLayout`` (a QFormLayout); ``onChanged()`` runs after every change a user
        or a fill makes (not while ``restore`` puts saved values back)."""
        from DELICAITELib.clinical.form import form_fields

        self.onChanged = onChanged
        self.inputs = {}         # field name -> input widget
        self.messages = {}       # field name -> red QLabel under the input
        self._kinds = {}         # field name -> "number" / "integer" / "checkbox" / "choice"
        self._choiceValues = {}  # field name -> value of each combo box entry
        self._restoring = False
        for field in form_fields():
            self._addRow(formLayout, field)

    def _addRow(self, formLayout, field):
        import qt

        if field.kind in ("number", "integer"):
            editor = qt.QLineEdit()
            editor.placeholderText = field.placeholder
            editor.connect("textChanged(QString)", lambda *args, name=field.name: self._edited(name))
        elif field.kind == "checkbox":
            editor = qt.QCheckBox()
            editor.connect("toggled(bool)", lambda *args: self._changed())
        else:
            # a required choice starts empty too, so nobody is "male" by default
            choices = list(field.choices) if not field.required else [("", "— choose —"), *field.choices]
            editor = qt.QComboBox()
            for _, text in choices:
                editor.addItem(text)
            self._choiceValues[field.name] = [value for value, _ in choices]
            editor.connect("currentIndexChanged(int)", lambda *args, name=field.name: self._edited(name))
        editor.toolTip = field.tooltip
        row = qt.QWidget()
        grid = qt.QGridLayout(row)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(editor, 0, 0)
        if field.unit:
            grid.addWidget(qt.QLabel(field.unit), 0, 1)
        message = qt.QLabel()
        message.styleSheet = "color: #c0392b;"
        message.wordWrap = True
        message.visible = False
        grid.addWidget(message, 1, 0, 1, 2)
        formLayout.addRow(f"{field.label}{' *' if field.required else ''}:", row)
        self.inputs[field.name] = editor
        self._kinds[field.name] = field.kind
        self.messages[field.name] = message

    def values(self):
        """What the form holds: text for numbers, bool for checkboxes, the value of the chosen entry."""
        values = {}
        for name, editor in self.inputs.items():
            kind = self._kinds[name]
            if kind == "checkbox":
                values[name] = bool(editor.checked)
            elif kind == "choice":
                values[name] = self._choiceValues[name][max(editor.currentIndex, 0)]
            else:
                values[name] = editor.text
        return values

    def setValues(self, values):
        """Show ``values`` (as `values` gives them; DELICAITELib.clinical.form.form_values of a record)."""
        for name, value in values.items():
            editor, kind = self.inputs[name], self._kinds[name]
            if kind == "checkbox":
                editor.checked = bool(value)
            elif kind == "choice":
                editor.currentIndex = self._choiceValues[name].index(value)
            else:
                editor.text = value
        for name in values:
            self._showMessage(name, None)
        self._changed()

    def checkAll(self):
        """Show every field's message; return the list of messages (empty when the form is complete)."""
        from DELICAITELib.clinical.form import check_field

        problems = []
        for name, value in self.values().items():
            message = check_field(name, value)
            self._showMessage(name, message)
            if message:
                problems.append(message)
        return problems

    def savedValues(self):
        """The form as text, field by field (a checkbox "true"/"false"), for the parameter node."""
        return {name: (("true" if value else "false") if isinstance(value, bool) else value)
                for name, value in self.values().items()}

    def restore(self, saved):
        """Show what `savedValues` kept; fields the schema no longer has are left out."""
        self._restoring = True
        try:
            self.setValues({name: (text == "true" if self._kinds[name] == "checkbox" else text)
                            for name, text in saved.items() if name in self.inputs})
        finally:
            self._restoring = False

    def _edited(self, name):
        from DELICAITELib.clinical.form import check_field

        self._showMessage(name, check_field(name, self.values()[name]))
        self._changed()

    def _changed(self):
        if self.onChanged is not None and not self._restoring:
            self.onChanged()

    def _showMessage(self, name, message):
        label = self.messages[name]
        label.text = message or ""
        label.visible = bool(message)
